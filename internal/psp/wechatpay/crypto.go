package wechatpay

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/paygate/paygate/internal/psp"
)

// The headers WeChat Pay signs answers and callbacks with.
const (
	headerTimestamp = "Wechatpay-Timestamp"
	headerNonce     = "Wechatpay-Nonce"
	headerSignature = "Wechatpay-Signature"
	headerSerial    = "Wechatpay-Serial"
)

// authScheme is the Authorization scheme of API v3 requests.
const authScheme = "WECHATPAY2-SHA256-RSA2048"

// requestMessage is what a request signature covers: method, the URL's
// path and query, the timestamp, the nonce and the body, each ended by
// "\n" (an empty body is an empty line).
func requestMessage(method, pathQuery string, ts int64, nonce string, body []byte) []byte {
	m := make([]byte, 0, len(method)+len(pathQuery)+len(nonce)+len(body)+20)
	m = append(m, method...)
	m = append(m, '\n')
	m = append(m, pathQuery...)
	m = append(m, '\n')
	m = strconv.AppendInt(m, ts, 10)
	m = append(m, '\n')
	m = append(m, nonce...)
	m = append(m, '\n')
	m = append(m, body...)
	return append(m, '\n')
}

// responseMessage is what WeChat's answer and callback signatures cover:
// "timestamp\nnonce\nbody\n", over the body exactly as received.
func responseMessage(ts, nonce string, body []byte) []byte {
	m := make([]byte, 0, len(ts)+len(nonce)+len(body)+3)
	m = append(m, ts...)
	m = append(m, '\n')
	m = append(m, nonce...)
	m = append(m, '\n')
	m = append(m, body...)
	return append(m, '\n')
}

// signSHA256RSA is SHA256withRSA (PKCS #1 v1.5), base64.
func signSHA256RSA(key *rsa.PrivateKey, msg []byte) (string, error) {
	h := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verifySHA256RSA checks a base64 SHA256withRSA signature.
func verifySHA256RSA(key *rsa.PublicKey, msg []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return errors.New("signature is not base64")
	}
	h := sha256.Sum256(msg)
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig)
}

// authorization is the Authorization header of one request.
func authorization(key *rsa.PrivateKey, mchID, serial, method, pathQuery string, ts int64, nonce string, body []byte) (string, error) {
	sig, err := signSHA256RSA(key, requestMessage(method, pathQuery, ts, nonce, body))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",signature="%s",timestamp="%d",serial_no="%s"`,
		authScheme, mchID, nonce, sig, ts, serial), nil
}

// verify checks the Wechatpay-* headers over body, judging the signed
// timestamp at at: the signature first (errors wrap psp.ErrBadSignature),
// then the time (psp.ErrStale).
func (c *Channel) verify(h http.Header, body []byte, at time.Time) error {
	ts, nc, sig, serial := h.Values(headerTimestamp), h.Values(headerNonce), h.Values(headerSignature), h.Values(headerSerial)
	if len(ts) != 1 || len(nc) != 1 || len(sig) != 1 || len(serial) != 1 || ts[0] == "" || nc[0] == "" || sig[0] == "" {
		return fmt.Errorf("%w: Wechatpay-Timestamp, -Nonce, -Signature and -Serial must each be given once", psp.ErrBadSignature)
	}
	key, ok := c.platform[serial[0]]
	if !ok {
		return fmt.Errorf("%w: no platform key with serial %q", psp.ErrBadSignature, serial[0])
	}
	if err := verifySHA256RSA(key, responseMessage(ts[0], nc[0], body), sig[0]); err != nil {
		return fmt.Errorf("%w: %v", psp.ErrBadSignature, err)
	}
	sec, ok := parseUnix(ts[0])
	if !ok {
		return fmt.Errorf("%w: Wechatpay-Timestamp %q is not unix seconds", psp.ErrMalformed, ts[0])
	}
	// As WeChat Pay's SDKs judge it (wechatpay-go's checkParameters:
	// math.Abs(timestamp-now) >= FiveMinute is refused), a timestamp
	// Tolerance or more away either way is stale: 300 s is already too
	// far. Whole seconds, without a Duration that could overflow
	// (parseUnix keeps sec to 12 digits).
	if d, tol := at.Unix()-sec, int64(c.cfg.Tolerance/time.Second); d >= tol || d <= -tol {
		return fmt.Errorf("%w: signed at %d, received at %d", psp.ErrStale, sec, at.Unix())
	}
	return nil
}

// decryptResource opens an AEAD_AES_256_GCM resource: base64 ciphertext
// (with the 16-byte tag at its end), the nonce and associated data as
// given. The key is the APIv3 key's bytes.
func decryptResource(key []byte, ciphertextB64, nonce, associatedData string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(ciphertextB64)
	if err != nil {
		return nil, errors.New("ciphertext is not base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(nonce))
	if err != nil || len(nonce) == 0 {
		return nil, fmt.Errorf("nonce of %d bytes", len(nonce))
	}
	if len(ct) < gcm.Overhead() {
		return nil, errors.New("ciphertext shorter than its tag")
	}
	pt, err := gcm.Open(nil, []byte(nonce), ct, []byte(associatedData))
	if err != nil {
		return nil, errors.New("resource does not decrypt with the APIv3 key")
	}
	return pt, nil
}
