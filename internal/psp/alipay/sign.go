package alipay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
)

// signContent is the string Alipay signs: every parameter with a
// non-empty value, except sign (and sign_type, for notifications and
// returns: skipSignType), sorted by name, as "k=v" joined by "&", values
// raw (not URL-encoded). Each name must occur once.
func signContent(params url.Values, skipSignType bool) (string, error) {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if len(v) != 1 {
			return "", errors.New("parameter " + k + " given more than once")
		}
		if k == "sign" || (skipSignType && k == "sign_type") || v[0] == "" {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k][0])
	}
	return b.String(), nil
}

// rsa2Sign is SHA256withRSA (PKCS #1 v1.5), base64: Alipay's "RSA2".
func rsa2Sign(key *rsa.PrivateKey, content []byte) (string, error) {
	h := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// rsa2Verify checks a base64 RSA2 signature with any of keys.
func rsa2Verify(keys []*rsa.PublicKey, content []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return errors.New("sign is not base64")
	}
	h := sha256.Sum256(content)
	for _, k := range keys {
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil {
			return nil
		}
	}
	return errors.New("sign does not verify with any Alipay public key")
}
