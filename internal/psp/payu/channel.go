// Package payu is the psp.Channel adapter for PayU India
// (https://docs.payu.in): the hosted checkout's hash-signed payment form,
// the reverse hash on its response, and the postservice API's
// verify_payment, cancel_refund_transaction, getAllRefundsFromTxnIds and
// get_Transaction_Details commands.
//
// PayU signs with SHA-512 over pipe-joined fields and a secret salt:
//
//	request  sha512(key|txnid|amount|productinfo|firstname|email|udf1|udf2|udf3|udf4|udf5||||||SALT)
//	response sha512([additionalCharges|]SALT|status||||||udf5|udf4|udf3|udf2|udf1|email|firstname|productinfo|amount|txnid|key)
//	API      sha512(key|command|var1|SALT)
//
// The salt never leaves the process: forms and API requests carry the
// merchant key (public: it is in every payment form) and the hash.
//
// The response hash covers status, udf1–udf5, email, firstname,
// productinfo, amount, txnid and key — not mihpayid, the payment mode or
// the time — and PayU signs no timestamp. ParseCallback therefore reads
// only those fields (the currency travels in udf1, which we set), and
// Capabilities.ConfirmByQuery is true: every callback is confirmed with
// verify_payment, whose answer (status, amount, mihpayid) decides. What
// remains against replays is that: a replayed response can only restate
// what PayU's API confirms, and the decision table pays an attempt once.
package payu

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Environments.
const (
	EnvTest = "test"
	EnvLive = "live"
)

// PayU's addresses (https://docs.payu.in/docs/prebuilt-checkout-page-integration,
// https://docs.payu.in/docs/refund-transaction-api).
const (
	TestPaymentURL = "https://test.payu.in/_payment"
	LivePaymentURL = "https://secure.payu.in/_payment"
	TestAPIURL     = "https://test.payu.in/merchant/postservice.php?form=2"
	LiveAPIURL     = "https://info.payu.in/merchant/postservice.php?form=2"
)

// Defaults of ChannelConfig.
const (
	DefaultChannelName = "payu"
	DefaultTimeout     = 10 * time.Second
	DefaultCurrency    = "INR"
	DefaultFirstName   = "Customer"
)

const maxBody = 1 << 20

// ist is PayU's time zone (addedon is India Standard Time).
var ist = time.FixedZone("IST", 5*3600+1800)

// ChannelConfig configures the adapter for one PayU merchant key.
type ChannelConfig struct {
	// Name is the channel's name (the path segment of its callback
	// URLs). Default "payu".
	Name string
	// Environment is "test" (default) or "live"; it picks the addresses.
	Environment string
	// PaymentURL and APIURL override the payment form's action and the
	// postservice API (tests point them at a fake).
	PaymentURL string
	APIURL     string
	// Key is the merchant key. Required.
	Key string
	// Salts are the merchant's salts: the first signs forms and API
	// requests; every one verifies responses, so a salt can be rotated
	// without losing responses hashed with the old one. At least one.
	Salts []string
	// Currency is the one currency the account takes. Default "INR".
	Currency string
	// FirstName is sent as firstname, which PayU requires and paygate's
	// pay requests do not carry. Default "Customer".
	FirstName string
	// Timeout bounds one API call. Default 10 s.
	Timeout time.Duration
	// Transport is the round tripper under the evidence-recording
	// psp.Transport. Default http.DefaultTransport.
	Transport http.RoundTripper
}

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.Environment == "" {
		c.Environment = EnvTest
	}
	if c.PaymentURL == "" {
		c.PaymentURL = map[string]string{EnvTest: TestPaymentURL, EnvLive: LivePaymentURL}[c.Environment]
	}
	if c.APIURL == "" {
		c.APIURL = map[string]string{EnvTest: TestAPIURL, EnvLive: LiveAPIURL}[c.Environment]
	}
	if c.Currency == "" {
		c.Currency = DefaultCurrency
	}
	if c.FirstName == "" {
		c.FirstName = DefaultFirstName
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports the first invalid field. Defaults count as set.
func (c ChannelConfig) Validate() error {
	c = c.withDefaults()
	if c.Environment != EnvTest && c.Environment != EnvLive {
		return fmt.Errorf("payu channel %s: Environment %q is neither %q nor %q", c.Name, c.Environment, EnvTest, EnvLive)
	}
	for _, u := range []string{c.PaymentURL, c.APIURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("payu channel %s: %q is not an absolute http(s) URL", c.Name, u)
		}
	}
	if c.Key == "" || strings.Contains(c.Key, "|") {
		return fmt.Errorf("payu channel %s: Key is required (without '|')", c.Name)
	}
	if len(c.Salts) == 0 {
		return fmt.Errorf("payu channel %s: at least one salt is required", c.Name)
	}
	for i, s := range c.Salts {
		if s == "" {
			return fmt.Errorf("payu channel %s: salt %d is empty", c.Name, i)
		}
	}
	if _, err := domain.ParseCurrency(c.Currency); err != nil {
		return fmt.Errorf("payu channel %s: %w", c.Name, err)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("payu channel %s: negative Timeout", c.Name)
	}
	return nil
}

// Channel is the psp.Channel adapter for one PayU merchant key. It is safe
// for concurrent use.
type Channel struct {
	cfg    ChannelConfig
	client *http.Client
}

var _ psp.Channel = (*Channel)(nil)

// NewChannel returns an adapter configured by cfg, or the Validate error.
func NewChannel(cfg ChannelConfig) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Channel{cfg: cfg, client: psp.NewClient(cfg.Name, cfg.Transport, cfg.Timeout)}, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds and the settlement list
// (get_Transaction_Details); no refund callbacks yet (see
// docs/psp/payu.md); every callback is confirmed with verify_payment.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is the answer to PayU's server-to-server webhook: any 200.
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: "OK"}
}

// sha512Hex is PayU's hash: lower-case hex SHA-512 of s.
func sha512Hex(s string) string {
	h := sha512.Sum512([]byte(s))
	return hex.EncodeToString(h[:])
}

// RequestHash is the hash of a payment form (PayU, "Generate Hash").
func RequestHash(key, txnid, amount, productinfo, firstname, email string, udf [5]string, salt string) string {
	return sha512Hex(strings.Join([]string{key, txnid, amount, productinfo, firstname, email,
		udf[0], udf[1], udf[2], udf[3], udf[4], "", "", "", "", "", salt}, "|"))
}

// ResponseHash is the reverse hash of a payment response; with
// additionalCharges non-empty, it is prepended (PayU, "Generate Hash",
// reverse hashing).
func ResponseHash(salt, status string, udf [5]string, email, firstname, productinfo, amount, txnid, key, additionalCharges string) string {
	s := strings.Join([]string{salt, status, "", "", "", "", "", udf[4], udf[3], udf[2], udf[1], udf[0],
		email, firstname, productinfo, amount, txnid, key}, "|")
	if additionalCharges != "" {
		s = additionalCharges + "|" + s
	}
	return sha512Hex(s)
}

// CommandHash is the hash of a postservice API request.
func CommandHash(key, command, var1, salt string) string {
	return sha512Hex(key + "|" + command + "|" + var1 + "|" + salt)
}

// amountString is m as PayU wants it: a decimal string with the
// currency's decimals ("1999.00" for INR), exact.
func (c *Channel) amountString(m domain.Money) (string, error) {
	if m.Currency().Code() != c.cfg.Currency {
		return "", fmt.Errorf("%s: the channel takes %s only", m, c.cfg.Currency)
	}
	return m.Decimal(), nil
}

// clean makes a value safe to put between the hash's pipes: PayU hashes
// the fields joined with '|', so a '|' inside one would shift the rest.
func clean(s string) string { return strings.ReplaceAll(s, "|", "/") }

// Initiate returns the payment form to POST to PayU's hosted checkout:
// txnid = transaction code, the amount in rupees with two decimals, udf1 =
// the currency (so that the signed response states it), surl = furl = the
// return URL, and the request hash. It makes no request: calling it again
// returns the same form.
func (c *Channel) Initiate(_ context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 || req.ReturnURL == "" || req.BuyerEmail == "" {
		return psp.Session{}, fmt.Errorf("payu %s: transaction code, amount, return URL and buyer email are required: %w", op, psp.ErrDeclined)
	}
	if strings.Contains(req.TransactionCode, "|") || strings.Contains(req.BuyerEmail, "|") {
		return psp.Session{}, fmt.Errorf("payu %s: '|' in transaction code or email: %w", op, psp.ErrDeclined)
	}
	amount, err := c.amountString(req.Amount)
	if err != nil {
		return psp.Session{}, fmt.Errorf("payu %s: %w: %v", op, psp.ErrDeclined, err)
	}
	product := clean(req.Description)
	if product == "" {
		product = clean(req.OrderID)
	}
	if product == "" {
		product = req.TransactionCode
	}
	first := clean(c.cfg.FirstName)
	udf := [5]string{req.Amount.Currency().Code()}
	form := map[string]string{
		"key": c.cfg.Key, "txnid": req.TransactionCode, "amount": amount, "productinfo": product,
		"firstname": first, "email": req.BuyerEmail, "udf1": udf[0], "surl": req.ReturnURL, "furl": req.ReturnURL,
		"hash": RequestHash(c.cfg.Key, req.TransactionCode, amount, product, first, req.BuyerEmail, udf, c.cfg.Salts[0]),
	}
	return psp.Session{PayURL: c.cfg.PaymentURL, Form: form}, nil
}

// APIError is a postservice answer that refused the command.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is PayU's error_code ("" if none), Message its msg.
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("HTTP %d, error %s: %s", e.Status, e.Code, e.Message)
}

// command POSTs one postservice command and returns the 200 answer's
// body. Network errors, timeouts, 5xx, 429 and 408 are temporary; other
// non-200 answers are declined.
func (c *Channel) command(ctx context.Context, op, command string, vars ...string) ([]byte, error) {
	f := url.Values{"key": {c.cfg.Key}, "command": {command}, "var1": {vars[0]},
		"hash": {CommandHash(c.cfg.Key, command, vars[0], c.cfg.Salts[0])}}
	for i, v := range vars[1:] {
		f.Set(fmt.Sprintf("var%d", i+2), v)
	}
	body := []byte(f.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.APIURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("payu %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, &psp.TemporaryError{Op: "payu " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, &psp.TemporaryError{Op: "payu " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("payu %s: answer over %d bytes: %w", op, maxBody, psp.ErrMalformed)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b[:min(len(b), 200)]))}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			return nil, &psp.TemporaryError{Op: "payu " + op, Err: ae}
		}
		return nil, fmt.Errorf("payu %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return b, nil
}

func malformed(op string, err error) error {
	return fmt.Errorf("payu %s: %w: %v", op, psp.ErrMalformed, err)
}

// flexString reads a JSON string or number as its text (PayU writes some
// fields either way: error_code, request_id).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = flexString(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = flexString(n.String())
	return nil
}

type verifyAnswer struct {
	Status  int                          `json:"status"`
	Msg     string                       `json:"msg"`
	Details map[string]transactionDetail `json:"transaction_details"`
}

type transactionDetail struct {
	MihPayID flexString `json:"mihpayid"`
	TxnID    string     `json:"txnid"`
	Amt      string     `json:"amt"`
	Status   string     `json:"status"`
	AddedOn  string     `json:"addedon"`
}

// Query asks verify_payment for the transaction code. PayU's answer is
// authoritative: status success → succeeded with the amount "amt" and the
// time "addedon" (IST), failure → failed, pending → pending, "Not Found"
// → unknown.
func (c *Channel) Query(ctx context.Context, transactionCode string) (domain.Notification, error) {
	const op = "query"
	b, err := c.command(ctx, op, "verify_payment", transactionCode)
	if err != nil {
		return domain.Notification{}, err
	}
	var v verifyAnswer
	if err := json.Unmarshal(b, &v); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	d, ok := v.Details[transactionCode]
	if !ok || len(v.Details) != 1 {
		return domain.Notification{}, malformed(op, fmt.Errorf("answer %q does not name %q alone", v.Msg, transactionCode))
	}
	n := domain.Notification{TransactionCode: transactionCode}
	switch strings.ToLower(d.Status) {
	case "not found":
		n.Status = domain.PSPUnknown
		return n, nil
	case "success":
		n.Status = domain.PSPSucceeded
	case "failure", "failed":
		n.Status = domain.PSPFailed
	case "pending":
		n.Status = domain.PSPPending
	default:
		return domain.Notification{}, malformed(op, fmt.Errorf("status %q", d.Status))
	}
	if d.TxnID != "" && d.TxnID != transactionCode {
		return domain.Notification{}, malformed(op, fmt.Errorf("details of %q, asked for %q", d.TxnID, transactionCode))
	}
	n.PSPReference = string(d.MihPayID)
	if n.Amount, err = domain.ParseDecimal(d.Amt, c.cfg.Currency); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	if n.Status == domain.PSPSucceeded {
		if n.PSPReference == "" {
			return domain.Notification{}, malformed(op, fmt.Errorf("success without mihpayid"))
		}
		t, err := time.ParseInLocation(time.DateTime, d.AddedOn, ist)
		if err != nil {
			return domain.Notification{}, malformed(op, fmt.Errorf("addedon %q", d.AddedOn))
		}
		n.OccurredAt = t.UTC()
	}
	return n, nil
}

type refundAnswer struct {
	Status    int        `json:"status"`
	Msg       string     `json:"msg"`
	RequestID flexString `json:"request_id"`
	MihPayID  flexString `json:"mihpayid"`
	ErrorCode flexString `json:"error_code"`
}

// codeTokenExists is PayU's answer to a refund whose token (our
// RefundRef) it already has: the earlier call reached PayU.
const codeTokenExists = "106"

// Refund asks cancel_refund_transaction for req.Amount back from the
// payment req.PSPReference (mihpayid), with token = RefundRef, which PayU
// keeps unique: a retry of an accepted refund is answered "Token already
// exists" and read as the same pending refund. PayU queues refunds: the
// result is RefundPending. Other refusals are psp.ErrDeclined.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.PSPReference == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.RefundResult{}, fmt.Errorf("payu %s: refund ref, mihpayid and amount are required: %w", op, psp.ErrDeclined)
	}
	amount, err := c.amountString(req.Amount)
	if err != nil {
		return psp.RefundResult{}, fmt.Errorf("payu %s: %w: %v", op, psp.ErrDeclined, err)
	}
	b, err := c.command(ctx, op, "cancel_refund_transaction", req.PSPReference, req.RefundRef, amount)
	if err != nil {
		return psp.RefundResult{}, err
	}
	var v refundAnswer
	if err := json.Unmarshal(b, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	res := psp.RefundResult{RefundRef: req.RefundRef, PSPReference: string(v.RequestID), Status: psp.RefundPending, Amount: req.Amount}
	switch {
	case v.Status == 1:
		return res, nil
	case string(v.ErrorCode) == codeTokenExists:
		return res, nil
	}
	return psp.RefundResult{}, fmt.Errorf("payu %s: %w: %w", op, psp.ErrDeclined, &APIError{Status: http.StatusOK, Code: string(v.ErrorCode), Message: v.Msg})
}

// QueryRefund is not offered by refund ref alone: PayU's refund status
// commands (check_action_status, getAllRefundsFromTxnIds) take PayU's
// request id or our transaction code. Callers use psp.QueryRefundOf,
// which gives QueryRefundByReference both.
func (c *Channel) QueryRefund(context.Context, string) (psp.RefundResult, error) {
	return psp.RefundResult{}, fmt.Errorf("payu query_refund: PayU looks refunds up by request id or txnid, not by token: %w", psp.ErrUnsupported)
}

// refundsCommand lists every refund of a transaction by its txnid (PayU,
// "Get All Refunds from Transaction IDs API",
// https://docs.payu.in/reference/get_all_refunds_from_transaction_ids_api;
// the hash is sha512(key|getAllRefundsFromTxnIds|txnid|SALT)).
const refundsCommand = "getAllRefundsFromTxnIds"

type refundsAnswer struct {
	Status int    `json:"status"`
	Msg    string `json:"msg"`
	// Details lists the refunds by mihpayid.
	Details map[string][]refundRow `json:"Refund Details"`
}

type refundRow struct {
	PayuID      flexString `json:"PayuID"`
	RequestID   flexString `json:"RequestID"`
	RefundToken string     `json:"RefundToken"`
	Amount      flexString `json:"Amount"`
	Status      string     `json:"Status"`
}

// refundStatus maps a refund's status in getAllRefundsFromTxnIds
// (SUCCESS, FAILURE, QUEUED, IN PROGRESS, REQUESTED, PENDING; the samples
// write them in lower case) to the port's.
func refundStatus(s string) (psp.RefundStatus, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "success":
		return psp.RefundSucceeded, true
	case "failure", "failed":
		return psp.RefundFailed, true
	case "queued", "in progress", "requested", "pending":
		return psp.RefundPending, true
	}
	return psp.RefundStatus{}, false
}

// QueryRefundByReference implements psp.RefundReferenceQuerier: it lists
// the refunded transaction's refunds (getAllRefundsFromTxnIds, var1 =
// q.TransactionCode) and finds ours by its token, the refund ref Refund
// sent as var2. Several rows with our token (a doubtful answer: PayU keeps
// tokens unique) are told apart by q.PSPReference, PayU's request id,
// when Refund got one; otherwise the answer is psp.ErrMalformed. A row of
// another payment than q.PaymentPSPReference is psp.ErrMalformed too.
// No row with our token, or an answer with status 0 (PayU's "no refunds"
// for the txnid), is RefundUnknown: the refund never reached PayU, and a
// call made again with the same token is deduplicated by PayU (106 Token
// already exists).
func (c *Channel) QueryRefundByReference(ctx context.Context, q psp.RefundQuery) (psp.RefundResult, error) {
	const op = "query_refund"
	if q.RefundRef == "" || q.TransactionCode == "" {
		return psp.RefundResult{}, fmt.Errorf("payu %s: PayU lists refunds by txnid; refund ref and transaction code are required: %w", op, psp.ErrUnsupported)
	}
	b, err := c.command(ctx, op, refundsCommand, q.TransactionCode)
	if err != nil {
		return psp.RefundResult{}, err
	}
	var v refundsAnswer
	if err := json.Unmarshal(b, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	unknown := psp.RefundResult{RefundRef: q.RefundRef, Status: psp.RefundUnknown}
	if v.Status != 1 {
		return unknown, nil
	}
	var found []refundRow
	for _, rows := range v.Details {
		for _, r := range rows {
			if r.RefundToken == q.RefundRef {
				found = append(found, r)
			}
		}
	}
	if len(found) > 1 && q.PSPReference != "" {
		var same []refundRow
		for _, r := range found {
			if string(r.RequestID) == q.PSPReference {
				same = append(same, r)
			}
		}
		found = same
	}
	switch len(found) {
	case 0:
		return unknown, nil
	case 1:
	default:
		return psp.RefundResult{}, malformed(op, fmt.Errorf("%d refunds of %s with token %q", len(found), q.TransactionCode, q.RefundRef))
	}
	r := found[0]
	if q.PaymentPSPReference != "" && string(r.PayuID) != "" && string(r.PayuID) != q.PaymentPSPReference {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %q is of payment %s, not %s", q.RefundRef, r.PayuID, q.PaymentPSPReference))
	}
	st, ok := refundStatus(r.Status)
	if !ok {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund status %q", r.Status))
	}
	res := psp.RefundResult{RefundRef: q.RefundRef, PSPReference: string(r.RequestID), Status: st}
	if r.Amount != "" {
		if res.Amount, err = domain.ParseDecimal(string(r.Amount), c.cfg.Currency); err != nil {
			return psp.RefundResult{}, malformed(op, err)
		}
	}
	return res, nil
}

// settlementsCommand lists a date range's transactions (PayU, "Get
// Transaction Details API", https://docs.payu.in/reference/get_transaction_details_api).
// get_settlement_details is not used: it is keyed by the date PayU pays
// the merchant out (a day or two after the payment) and is not offered on
// the test environment, while the port asks for the payments of one
// business day.
const settlementsCommand = "get_Transaction_Details"

type transactionsAnswer struct {
	Status  int               `json:"status"`
	Msg     string            `json:"msg"`
	Details *[]transactionRow `json:"Transaction_details"`
}

type transactionRow struct {
	ID      flexString `json:"id"`
	Action  string     `json:"action"`
	Status  string     `json:"status"`
	TxnID   string     `json:"txnid"`
	AddedOn string     `json:"addedon"`
	Amount  flexString `json:"amount"`
	UDF1    string     `json:"udf1"`
}

// rowStatus maps a transaction's status in get_Transaction_Details (its
// "unmappedstatus": captured, failed, bounced, dropped, userCancelled, …;
// the SDKs' samples also show SUCCESS) to succeeded or failed; ok is false
// for a payment that has not ended (pending, in progress, auth, …).
func rowStatus(s string) (st domain.PSPStatus, ok bool) {
	switch strings.ToLower(s) {
	case "captured", "success":
		return domain.PSPSucceeded, true
	case "failed", "failure", "bounced", "dropped", "usercancelled", "cancelled":
		return domain.PSPFailed, true
	}
	return domain.PSPStatus{}, false
}

// SettledPayments lists the payments of day's calendar date in day's
// location (pass a time in Asia/Kolkata, PayU's business day) with
// get_Transaction_Details: var1 and var2 are the first and last IST dates
// of that day (the same date when the channel's zone is IST), and rows
// whose addedon (IST) falls outside the day are left out. PayU answers the
// whole range at once: there is one page, and page must be "".
//
// A captured transaction is a succeeded row, a failed, bounced, dropped or
// cancelled one a failed row; payments not ended yet and other actions
// (refunds) are left out, as is a failed try of a transaction code that
// another row of the day lists captured. TransactionCode is txnid,
// PSPReference the PayU id (mihpayid), Amount "amount" read exactly in the
// currency paygate put in udf1 (the channel's currency when udf1 holds
// none), SettledAt addedon.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	if page != "" {
		return psp.SettlementPage{}, fmt.Errorf("payu %s: page %q: PayU answers a day in one page: %w", op, page, psp.ErrMalformed)
	}
	y, m, d := day.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, day.Location())
	end := start.AddDate(0, 0, 1)
	from, to := start.In(ist).Format(time.DateOnly), end.Add(-time.Second).In(ist).Format(time.DateOnly)
	b, err := c.command(ctx, op, settlementsCommand, from, to)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	var v transactionsAnswer
	if err := json.Unmarshal(b, &v); err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	if v.Status != 1 {
		return psp.SettlementPage{}, fmt.Errorf("payu %s: %w: %w", op, psp.ErrDeclined, &APIError{Status: http.StatusOK, Message: v.Msg})
	}
	if v.Details == nil {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("answer %q lists no Transaction_details", v.Msg))
	}
	rows := make([]psp.SettlementRow, 0, len(*v.Details))
	captured := map[string]bool{}
	for i, r := range *v.Details {
		if r.Action != "" && !strings.EqualFold(r.Action, "capture") {
			continue
		}
		st, ok := rowStatus(r.Status)
		if !ok {
			continue
		}
		if r.TxnID == "" || r.ID == "" {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("row %d: txnid %q, id %q", i, r.TxnID, r.ID))
		}
		at, err := time.ParseInLocation(time.DateTime, r.AddedOn, ist)
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("row %d (%s): addedon %q", i, r.TxnID, r.AddedOn))
		}
		if at.Before(start) || !at.Before(end) {
			continue
		}
		currency := c.cfg.Currency
		if _, err := domain.ParseCurrency(r.UDF1); err == nil {
			currency = r.UDF1
		}
		amount, err := domain.ParseDecimal(string(r.Amount), currency)
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("row %d (%s): amount %q in %s: %v", i, r.TxnID, r.Amount, currency, err))
		}
		if st == domain.PSPSucceeded {
			captured[r.TxnID] = true
		}
		rows = append(rows, psp.SettlementRow{TransactionCode: r.TxnID, PSPReference: string(r.ID), Amount: amount,
			Status: st, SettledAt: at.UTC()})
	}
	out := psp.SettlementPage{Rows: rows[:0]}
	for _, r := range rows {
		if r.Status == domain.PSPFailed && captured[r.TransactionCode] {
			continue
		}
		out.Rows = append(out.Rows, r)
	}
	return out, nil
}
