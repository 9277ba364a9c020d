package adyen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/domain"
)

const (
	testMerchant = "PaygateECOM"
	// testKey is the HMAC key of adyen-go-api-library's
	// src/hmacvalidator/hmacvalidator_test.go (the published vector below
	// is made with it); oldKey stands for a key being rotated out.
	testKey  = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00"
	oldKey   = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
	wrongKey = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
)

func newTestChannel(t testing.TB, edit ...func(*ChannelConfig)) *Channel {
	t.Helper()
	cfg := ChannelConfig{APIKey: "test_api_key", MerchantAccount: testMerchant, HMACKeys: []string{testKey, oldKey},
		BaseURL: "http://127.0.0.1:1"}
	for _, f := range edit {
		f(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	return ch
}

// item is a notification item stating n, as Adyen's webhook carries it.
// Only the fields the HMAC covers are set (see contract_test.go).
func item(n domain.Notification) map[string]any {
	v, err := toAdyen(n.Amount)
	if err != nil {
		panic(err)
	}
	success := "false"
	if n.Status == domain.PSPSucceeded {
		success = "true"
	}
	return map[string]any{
		"amount":              map[string]any{"currency": n.Amount.Currency().Code(), "value": v},
		"eventCode":           EventAuthorisation,
		"merchantAccountCode": testMerchant,
		"merchantReference":   n.TransactionCode,
		"pspReference":        n.PSPReference,
		"success":             success,
	}
}

// webhook is the JSON body of a standard webhook with the given items,
// each signed with hexKey (none if hexKey is "").
func webhook(hexKey, live string, items ...map[string]any) []byte {
	var entries []any
	for _, it := range items {
		it = cloneMap(it)
		if hexKey != "" {
			k, _ := hex.DecodeString(hexKey)
			ri := requestItemOf(it)
			ad, _ := it["additionalData"].(map[string]any)
			if ad == nil {
				ad = map[string]any{}
			}
			ad["hmacSignature"] = Sign(k, ri.signedData())
			it["additionalData"] = ad
		}
		entries = append(entries, map[string]any{"NotificationRequestItem": it})
	}
	b, err := json.Marshal(map[string]any{"live": live, "notificationItems": entries})
	if err != nil {
		panic(err)
	}
	return b
}

func cloneMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	_ = d.Decode(&c)
	return c
}

func requestItemOf(m map[string]any) *requestItem {
	b, _ := json.Marshal(m)
	var it requestItem
	if err := json.Unmarshal(b, &it); err != nil {
		panic(err)
	}
	return &it
}

func asyncCallback(body []byte) domain.Callback {
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/adyen",
		Headers: http.Header{"Content-Type": {"application/json"}}, Query: url.Values{}, Body: body}
}

func mustContain(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to say %q", err, want)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
