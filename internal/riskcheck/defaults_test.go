package riskcheck

import "testing"

// PAYGATE_RISK_SERVICE_KEY is id:secret; an error does not print it.
func TestServiceKeyText(t *testing.T) {
	t.Parallel()
	var k ServiceKey
	if err := k.UnmarshalText([]byte("paygate:s3:cret")); err != nil || k != (ServiceKey{ID: "paygate", Secret: "s3:cret"}) {
		t.Errorf("%+v, %v", k, err)
	}
	for _, text := range []string{"s3cret", ":s3cret", "paygate:", ""} {
		if err := k.UnmarshalText([]byte(text)); err == nil || err.Error() != "not id:secret" {
			t.Errorf("%q: %v", text, err)
		}
	}
}
