package adyen

import (
	"encoding/json"
	"testing"
)

func TestAdyenSettings(t *testing.T) {
	ok := `{"environment":"test","api_key":"k","merchant_account":"M","hmac_keys":["44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"],"timeout":"5s"}`
	ch, err := FromSettings("adyen_eu", json.RawMessage(ok))
	if err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	if ch.Name() != "adyen_eu" {
		t.Errorf("name %q", ch.Name())
	}
	for _, bad := range []string{
		`{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"secret":"x"}`, // unknown key
		`{"api_key":"k","merchant_account":"M"}`,                                 // no HMAC key
		`{"api_key":"k","merchant_account":"M","hmac_keys":["zz"]}`,              // not hex
		`{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"timeout":"soon"}`,
		`{"environment":"live","api_key":"k","merchant_account":"M","hmac_keys":["00"]}`, // no live prefix
	} {
		if _, err := FromSettings("a", json.RawMessage(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
