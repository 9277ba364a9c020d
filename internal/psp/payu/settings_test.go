package payu

import (
	"encoding/json"
	"testing"
)

func TestPayUSettings(t *testing.T) {
	ok := `{"environment":"test","key":"gtKFFx","salts":["eCwWELxi"],"timeout":"5s"}`
	ch, err := FromSettings("payu_in", json.RawMessage(ok))
	if err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	if ch.Name() != "payu_in" {
		t.Errorf("name %q", ch.Name())
	}
	for _, bad := range []string{
		`{"key":"k","salts":["s"],"salt":"s"}`, // unknown key
		`{"key":"k"}`,                          // no salt
		`{"salts":["s"]}`,                      // no key
		`{"key":"k","salts":["s"],"environment":"prod"}`,
		`{"key":"k","salts":["s"],"currency":"XYZ"}`,
		`{"key":"k","salts":["s"],"timeout":"soon"}`,
	} {
		if _, err := FromSettings("p", json.RawMessage(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
