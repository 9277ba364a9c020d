package wechatpay

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/pemkey"
)

// TestSDKSignatureVector: SHA256withRSA of "source" under wechatpay-go's
// test key is the signature its tests expect (utils/sign_test.go,
// TestSha256WithRsa); PKCS #1 v1.5 is deterministic, so ours must be
// byte for byte the same, and must verify with the published public key.
func TestSDKSignatureVector(t *testing.T) {
	keys(t)
	got, err := signSHA256RSA(platformKey, []byte("source"))
	if err != nil {
		t.Fatal(err)
	}
	if got != sdkSignatureOfSource {
		t.Fatalf("signature of %q =\n%s\nwant (wechatpay-go)\n%s", "source", got, sdkSignatureOfSource)
	}
	pub, err := pemkey.ParsePublic([]byte(sdkPublicKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifySHA256RSA(pub, []byte("source"), sdkSignatureOfSource); err != nil {
		t.Fatalf("published signature does not verify: %v", err)
	}
	if err := verifySHA256RSA(pub, []byte("wrong source"), sdkSignatureOfSource); err == nil {
		t.Fatal("published signature verifies another message")
	}
}

// TestSDKDecryptVector is wechatpay-go's utils/aes_test.go
// (TestDecryptAes256Gcm): its APIv3 key is 16 bytes (so AES-128-GCM),
// which the decryption itself accepts; the channel insists on 32.
func TestSDKDecryptVector(t *testing.T) {
	const (
		key        = "testAPIv3Key0000"
		ciphertext = "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"
		nonce      = "wCq51qZv4Yfg"
		ad         = "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8"
	)
	pt, err := decryptResource([]byte(key), ciphertext, nonce, ad)
	if err != nil || string(pt) != "Hello World" {
		t.Fatalf("decrypt = %q, %v; want %q", pt, err, "Hello World")
	}
	for name, c := range map[string][4]string{
		"invalid base64 ciphertext": {key, "invalid cipher", nonce, ad},
		"invalid ciphertext":        {key, "SGVsbG8gV29ybGQK", nonce, ad},
		"invalid aes key":           {"not a aes key", ciphertext, nonce, ad},
		"wrong aes key":             {"testAPIv3Key1111", ciphertext, nonce, ad},
		"wrong associated data":     {key, ciphertext, nonce, ad + "x"},
		"empty nonce":               {key, ciphertext, "", ad},
	} {
		if _, err := decryptResource([]byte(c[0]), c[1], c[2], c[3]); err == nil {
			t.Errorf("%s: decrypted", name)
		}
	}
}

// TestAuthorizationHeader checks the header's shape and that its
// signature covers "METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n" as the API v3
// signing guide (pay.weixin.qq.com/doc/v3/merchant/4012365336) gives it.
func TestAuthorizationHeader(t *testing.T) {
	keys(t)
	body := []byte(`{"appid":"wx"}`)
	h, err := authorization(merchantKey, testMchID, testSerialNo, "POST", "/v3/pay/transactions/native", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", body)
	if err != nil {
		t.Fatal(err)
	}
	want := `WECHATPAY2-SHA256-RSA2048 mchid="1900006XXX",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="`
	if !strings.HasPrefix(h, want) || !strings.HasSuffix(h, `",timestamp="1554208460",serial_no="`+testSerialNo+`"`) {
		t.Fatalf("Authorization = %s", h)
	}
	sig := h[len(want):strings.Index(h, `",timestamp=`)]
	msg := "POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"appid\":\"wx\"}\n"
	if err := verifySHA256RSA(&merchantKey.PublicKey, []byte(msg), sig); err != nil {
		t.Fatalf("signature does not cover the documented message: %v", err)
	}
}

// TestUnknownSerial: a callback signed by a key whose serial the channel
// does not hold is refused, even if the signature is good.
func TestUnknownSerial(t *testing.T) {
	ch, _ := newChannel(t, "")
	n := harness(ch, &counting{}).Notifications[0]
	cb := callbackFor(n, n.OccurredAt, platformKey)
	cb.ReceivedAt = n.OccurredAt
	cb.Headers.Set(headerSerial, "PUB_KEY_ID_OTHER")
	if _, err := ch.ParseCallback(cb); !errors.Is(err, psp.ErrBadSignature) {
		t.Fatalf("unknown serial: %v", err)
	}
	cb.Headers.Set(headerSerial, sdkPubKeyID)
	cb.Headers.Add(headerSignature, cb.Headers.Get(headerSignature))
	if _, err := ch.ParseCallback(cb); !errors.Is(err, psp.ErrBadSignature) {
		t.Fatalf("signature header twice: %v", err)
	}
	cb.Kind = domain.CallbackSync
	if _, err := ch.ParseCallback(cb); !errors.Is(err, psp.ErrMalformed) {
		t.Fatalf("sync kind: %v", err)
	}
	if a := ch.Ack(); a.Status != http.StatusOK {
		t.Fatalf("Ack %+v", a)
	}
}
