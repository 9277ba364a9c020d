package ingress_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/broker/brokertest"
	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/adyen"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

type channels map[string]psp.Channel

func (c channels) Channel(name string) (psp.Channel, bool) { ch, ok := c[name]; return ch, ok }

// adyenWebhook is a standard Adyen webhook of one item, its HMAC made
// with hexKey over the fields Adyen signs.
func adyenWebhook(t *testing.T, hexKey string, item map[string]any) []byte {
	t.Helper()
	amount := item["amount"].(map[string]any)
	data := strings.Join([]string{item["pspReference"].(string), item["originalReference"].(string), item["merchantAccountCode"].(string),
		item["merchantReference"].(string), strconv.FormatInt(amount["value"].(int64), 10), amount["currency"].(string),
		item["eventCode"].(string), item["success"].(string)}, ":")
	key, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	item["additionalData"] = map[string]any{"hmacSignature": base64.StdEncoding.EncodeToString(m.Sum(nil))}
	b, err := json.Marshal(map[string]any{"live": "false", "notificationItems": []any{map[string]any{"NotificationRequestItem": item}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCallbackKeys: the ingress keys each callback on the topic by what
// psp.Verify says it is about — an Adyen AUTHORISATION by its attempt, an
// Adyen REFUND webhook by its refund (it verifies as a refund's callback,
// as the callbacks group finds it), and a forged REFUND webhook
// <channel>/unverified — and stores each, answering Adyen's ack. The keys
// are read from a real (in-process) broker.
func TestCallbackKeys(t *testing.T) {
	t.Parallel()
	const (
		hmacKey  = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
		wrongKey = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
		merchant = "PaygateECOM"
	)
	ctx, b := brokertest.Start(t, 1)
	w, err := producers.NewWriter(producers.WriterConfig{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	ch, err := adyen.NewChannel(adyen.ChannelConfig{Name: "adyen_eu", APIKey: "test_api_key", MerchantAccount: merchant,
		HMACKeys: []string{hmacKey}, BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s := ingress.New(ingress.Config{Now: time.Now}, w, &db{}, channels{"adyen_eu": ch}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	srv := httptest.NewServer(s.Handler(ingress.Public))
	t.Cleanup(srv.Close)

	item := func(event, merchantRef, pspRef, originalRef string) map[string]any {
		return map[string]any{"amount": map[string]any{"currency": "EUR", "value": int64(500)}, "eventCode": event,
			"eventDate": time.Now().UTC().Format(time.RFC3339), "merchantAccountCode": merchant, "merchantReference": merchantRef,
			"pspReference": pspRef, "originalReference": originalRef, "success": "true", "reason": ""}
	}
	const (
		code      = "T261125100000123ABCDEFGH"
		refundRef = "R261125100000123ABCDEFGH"
	)
	webhooks := []struct {
		name, key string
		body      []byte
	}{
		{"payment", "adyen_eu/" + code, adyenWebhook(t, hmacKey, item("AUTHORISATION", code, "psp_payment_1", ""))},
		{"refund", "adyen_eu/refund/" + refundRef, adyenWebhook(t, hmacKey, item("REFUND", refundRef, "psp_refund_1", "psp_payment_1"))},
		{"forged refund", "adyen_eu/unverified", adyenWebhook(t, wrongKey, item("REFUND", refundRef, "psp_refund_2", "psp_payment_1"))},
	}
	for _, wh := range webhooks {
		code, answer, _ := post(t, srv, "/v1/callbacks/adyen_eu", wh.body, "", nil)
		if code != http.StatusOK || string(answer) != "[accepted]" {
			t.Fatalf("%s: answered %d %s", wh.name, code, answer)
		}
	}

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{b.Addr()}, Topic: schemas.TopicPSPCallbacks, Partition: 0,
		MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	for _, wh := range webhooks {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("%s: %v", wh.name, err)
		}
		if string(m.Key) != wh.key {
			t.Errorf("%s keyed %q, want %q", wh.name, m.Key, wh.key)
		}
		raw, err := schemas.DecodeRawCallback(m.Value)
		if err != nil || !bytes.Equal(raw.Body, wh.body) || raw.Channel != "adyen_eu" || raw.Kind != "async" {
			t.Errorf("%s stored as %+v, %v", wh.name, raw, err)
		}
	}
	// Nothing more: the three webhooks are the topic's three messages.
	conn, err := kafkago.DialLeader(ctx, "tcp", b.Addr(), schemas.TopicPSPCallbacks, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if end, err := conn.ReadLastOffset(); err != nil || end != int64(len(webhooks)) {
		t.Errorf("the topic ends at %d (%v), want %d", end, err, len(webhooks))
	}
}
