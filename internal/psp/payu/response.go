package payu

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// maxForm bounds a response body the parser reads.
const maxForm = 64 << 10

// signedFields are the response's fields under the reverse hash.
var signedFields = []string{"key", "txnid", "amount", "productinfo", "firstname", "email", "status",
	"udf1", "udf2", "udf3", "udf4", "udf5", "additionalCharges", "hash"}

func bad(format string, a ...any) error {
	return fmt.Errorf("payu response: %w: %s", psp.ErrBadSignature, fmt.Sprintf(format, a...))
}

// ParseCallback verifies and reads PayU's payment response: the form PayU
// has the buyer's browser POST to surl/furl (Sync) or posts to the
// configured webhook (Async); a GET with the same parameters in the query
// is read the same way. The reverse hash is checked with every configured
// salt before a field is interpreted; it covers key, txnid, amount,
// productinfo, firstname, email, status, udf1–udf5 and additionalCharges,
// so only those are read: mihpayid is not signed and is left to Query
// (ConfirmByQuery), as are the time and the payment mode. Errors wrap
// psp.ErrBadSignature (missing, repeated or wrong hash, or another
// merchant key) or psp.ErrMalformed; on error the Notification is the zero
// value. PayU signs no time: see the package comment for what stands
// against replays. It does no I/O.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	if cb.Kind != domain.CallbackAsync && cb.Kind != domain.CallbackSync {
		return domain.Notification{}, fmt.Errorf("payu callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
	}
	q := cb.Query
	if len(cb.Body) > 0 {
		if len(cb.Body) > maxForm {
			return domain.Notification{}, fmt.Errorf("payu response: %w: body over %d bytes", psp.ErrMalformed, maxForm)
		}
		var err error
		if q, err = url.ParseQuery(string(cb.Body)); err != nil {
			return domain.Notification{}, bad("unreadable form: %v", err)
		}
	}
	v := make(map[string]string, len(signedFields))
	for _, k := range signedFields {
		if len(q[k]) > 1 {
			return domain.Notification{}, bad("%s given %d times", k, len(q[k]))
		}
		v[k] = q.Get(k)
	}
	got, err := hex.DecodeString(v["hash"])
	if err != nil || len(got) != 64 {
		return domain.Notification{}, bad("no hash")
	}
	udf := [5]string{v["udf1"], v["udf2"], v["udf3"], v["udf4"], v["udf5"]}
	ok := 0
	for _, salt := range c.cfg.Salts {
		want, _ := hex.DecodeString(ResponseHash(salt, v["status"], udf, v["email"], v["firstname"], v["productinfo"],
			v["amount"], v["txnid"], v["key"], v["additionalCharges"]))
		ok |= subtle.ConstantTimeCompare(want, got)
	}
	if ok != 1 {
		return domain.Notification{}, bad("no salt reproduces the hash")
	}
	if v["key"] != c.cfg.Key {
		return domain.Notification{}, bad("merchant key %q is not the channel's", v["key"])
	}
	n, err := readResponse(v, udf)
	return n, psp.Verified(err)
}

// readResponse reads a response whose hash verified.
func readResponse(v map[string]string, udf [5]string) (domain.Notification, error) {
	var err error
	n := domain.Notification{TransactionCode: v["txnid"]}
	switch strings.ToLower(v["status"]) {
	case "success":
		n.Status = domain.PSPSucceeded
	case "failure", "failed":
		n.Status = domain.PSPFailed
	case "pending":
		n.Status = domain.PSPPending
	default:
		return domain.Notification{}, fmt.Errorf("payu response: %w: status %q", psp.ErrMalformed, v["status"])
	}
	if n.TransactionCode == "" {
		return domain.Notification{}, fmt.Errorf("payu response: %w: no txnid", psp.ErrMalformed)
	}
	// udf1 is the currency paygate put in the form; a response without it
	// is for a payment paygate did not create.
	if n.Amount, err = domain.ParseDecimal(v["amount"], udf[0]); err != nil {
		return domain.Notification{}, fmt.Errorf("payu response: %w: amount %q in %q: %v", psp.ErrMalformed, v["amount"], udf[0], err)
	}
	return n, nil
}
