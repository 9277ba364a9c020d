// Package pemkey reads the RSA keys and certificates that PSPs hand out
// (Alipay, WeChat Pay, PayPal): PEM in any of the usual wrappings, or the
// bare base64 DER that Alipay's key tool prints. It is shared by the PSP
// adapters and their settings decoders so that every adapter accepts keys
// in the same forms.
package pemkey

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNoKey is returned for input that holds no usable RSA key.
var ErrNoKey = errors.New("no RSA key")

// der returns the DER bytes of the first PEM block of data, or of data
// read as bare base64 (whitespace ignored), with the PEM type ("" for
// bare base64).
func der(data []byte) ([]byte, string, error) {
	if b, _ := pem.Decode(data); b != nil {
		return b.Bytes, b.Type, nil
	}
	s := strings.Join(strings.Fields(string(data)), "")
	if s == "" {
		return nil, "", fmt.Errorf("%w: empty", ErrNoKey)
	}
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, "", fmt.Errorf("%w: neither PEM nor base64 DER", ErrNoKey)
	}
	return d, "", nil
}

// ParsePrivate reads an RSA private key in PKCS #8 or PKCS #1 form.
func ParsePrivate(data []byte) (*rsa.PrivateKey, error) {
	d, _, err := der(data)
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKCS8PrivateKey(d); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("%w: PKCS #8 key is %T", ErrNoKey, k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(d); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: not a PKCS #8 or PKCS #1 private key", ErrNoKey)
}

// ParsePublic reads an RSA public key: PKIX ("PUBLIC KEY"), PKCS #1
// ("RSA PUBLIC KEY") or the key of an X.509 certificate ("CERTIFICATE").
// A certificate's validity period is not checked here: the PSP names the
// key it signs with, and rotation is the operator's to manage.
func ParsePublic(data []byte) (*rsa.PublicKey, error) {
	d, typ, err := der(data)
	if err != nil {
		return nil, err
	}
	if typ == "CERTIFICATE" {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrNoKey, err)
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
			return k, nil
		}
		return nil, fmt.Errorf("%w: certificate key is %T", ErrNoKey, c.PublicKey)
	}
	if k, err := x509.ParsePKIXPublicKey(d); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("%w: public key is %T", ErrNoKey, k)
	}
	if k, err := x509.ParsePKCS1PublicKey(d); err == nil {
		return k, nil
	}
	if c, err := x509.ParseCertificate(d); err == nil {
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: not a PKIX or PKCS #1 public key or certificate", ErrNoKey)
}

// Read returns the inline value, or the contents of file; exactly one of
// the two must be set. what names the setting in errors (never its value).
func Read(what, inline, file string) ([]byte, error) {
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("%s: give the value or a file, not both", what)
	case inline != "":
		return []byte(inline), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s: required", what)
}
