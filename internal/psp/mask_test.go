package psp

import "testing"

var benchQueryAnswer = []byte(`{"id":"sp_0123456789abcdef","merchant_ref":"tc_0123456789abcdef0123","status":"succeeded","amount":1999,"currency":"USD","paid_amount":1999,"paid_at":"2026-11-25T10:00:00.123456Z","pay_url":"http://127.0.0.1:8090/pay/sp_0123456789abcdef","token":"tok_0123456789abcdef","expires_at":"2026-11-25T10:30:00Z","created_at":"2026-11-25T09:59:00Z"}`)

// BenchmarkMask is the masking of a status query's answer, which every
// confirmed callback records as evidence.
func BenchmarkMask(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Mask(benchQueryAnswer)
	}
}

func TestMaskFastPathKeepsMasking(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"sp_1","amount":1999}`:                          `{"id":"sp_1","amount":1999}`, // as sent
		`{"id":"sp_1","client_secret":"s3"}`:                   `{"client_secret":"***","id":"sp_1"}`,
		`{"Card_Number":"4111","x":{"API_KEY":"k"}}`:           `{"Card_Number":"***","x":{"API_KEY":"***"}}`,
		`{"pan":"4111111111111111"}`:                           `{"pan":"***"}`,
		`password=hunter2&user=a`:                              `password=%2A%2A%2A&user=a`,
		`{"company":"ACME"}`:                                   `{"company":"ACME"}`,
		"{\"\u017fecret\":\"x\"}":                              `{"ſecret":"***"}`, // folds onto "secret"
		`{"authorization":"Bearer x","note":"no secret here"}`: `{"authorization":"***","note":"no secret here"}`,
	} {
		if got := Mask([]byte(in)); got != want {
			t.Errorf("Mask(%s) = %s, want %s", in, got, want)
		}
	}
}
