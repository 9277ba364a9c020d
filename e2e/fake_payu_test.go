package e2e

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// payuFake is PayU India as the PayU adapter uses it (docs.payu.in): the
// hosted checkout (its form, hash-signed by the merchant, is what the
// buyer posts; the fake's pay is that), the server-to-server webhook with
// the reverse hash, and the postservice API — verify_payment,
// cancel_refund_transaction, getAllRefundsFromTxnIds,
// get_Transaction_Details — each signed sha512(key|command|var1|SALT).
// Refunds are queued, then succeed: their status is read with
// getAllRefundsFromTxnIds.
type payuFake struct {
	srv       *httptest.Server
	key, salt string
	mu        sync.Mutex
	n         int
	payments  []payuPayment
	refunds   []payuRefund
}

type payuPayment struct {
	MihPayID, TxnID, Amount, Currency string
	AddedOn                           time.Time
}

type payuRefund struct {
	MihPayID, TxnID, Token, RequestID, Amount string
}

var payuIST = time.FixedZone("IST", 5*3600+1800)

func payuHash(parts ...string) string {
	h := sha512.Sum512([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(h[:])
}

func newPayUFake(t *testing.T) pspFake {
	f := &payuFake{key: "gtKFFx", salt: "4R38IvwiV57FwVpsgOvTXBdLE4tHUXFW"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *payuFake) channel(name string) string {
	return fmt.Sprintf(`{"name":%q,"kind":"payu","enabled":true,"weight":1,"settings":{"environment":"test","payment_url":%q,"api_url":%q,"key":%q,"salts":[%q],"currency":"INR","first_name":"Paygate"}}`,
		name, f.srv.URL+"/_payment", f.srv.URL+"/merchant/postservice.php?form=2", f.key, f.salt)
}

func (f *payuFake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/merchant/postservice.php" || r.ParseForm() != nil {
		http.NotFound(w, r)
		return
	}
	cmd, var1 := r.PostForm.Get("command"), r.PostForm.Get("var1")
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("key") != f.key || r.PostForm.Get("hash") != payuHash(f.key, cmd, var1, f.salt) {
		fmt.Fprint(w, `{"status":0,"msg":"Invalid Hash."}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var answer any
	switch cmd {
	case "verify_payment":
		d := map[string]any{"txnid": var1, "status": "Not Found", "amt": "0.00", "mihpayid": "Not Found"}
		if i := slices.IndexFunc(f.payments, func(p payuPayment) bool { return p.TxnID == var1 }); i >= 0 {
			p := f.payments[i]
			d = map[string]any{"mihpayid": p.MihPayID, "request_id": "", "bank_ref_num": "E2E" + p.MihPayID, "amt": p.Amount,
				"transaction_amount": p.Amount, "txnid": p.TxnID, "additional_charges": "0.00", "productinfo": "", "firstname": "Paygate",
				"bankcode": "CC", "udf1": p.Currency, "status": "success", "unmappedstatus": "captured", "mode": "CC",
				"addedon": p.AddedOn.In(payuIST).Format(time.DateTime), "error_code": "E000"}
		}
		answer = map[string]any{"status": 1, "msg": "1 out of 1 Transactions Fetched Successfully", "transaction_details": map[string]any{var1: d}}
	case "cancel_refund_transaction":
		token, amount := r.PostForm.Get("var2"), r.PostForm.Get("var3")
		i := slices.IndexFunc(f.payments, func(p payuPayment) bool { return p.MihPayID == var1 })
		if i < 0 {
			answer = map[string]any{"status": 0, "msg": "Invalid payuid", "error_code": 102}
			break
		}
		if slices.ContainsFunc(f.refunds, func(re payuRefund) bool { return re.Token == token }) {
			answer = map[string]any{"status": 0, "msg": "Token already exists", "error_code": 106}
			break
		}
		f.n++
		re := payuRefund{MihPayID: var1, TxnID: f.payments[i].TxnID, Token: token, RequestID: strconv.Itoa(131000000 + f.n), Amount: amount}
		f.refunds = append(f.refunds, re)
		answer = map[string]any{"status": 1, "msg": "Refund Request Queued", "request_id": re.RequestID, "bank_ref_num": nil,
			"mihpayid": json.Number(var1), "error_code": 102}
	case "getAllRefundsFromTxnIds":
		rows := map[string][]any{}
		for _, re := range f.refunds {
			if re.TxnID == var1 {
				rows[re.MihPayID] = append(rows[re.MihPayID], map[string]any{"PayuID": re.MihPayID, "RequestID": re.RequestID,
					"RefundToken": re.Token, "Amount": re.Amount, "Status": "success"})
			}
		}
		if len(rows) == 0 {
			answer = map[string]any{"status": 0, "msg": "No Refunds Found"}
			break
		}
		answer = map[string]any{"status": 1, "msg": "Refund Details Fetched", "Refund Details": rows}
	case "get_Transaction_Details":
		from, err1 := time.ParseInLocation(time.DateOnly, var1, payuIST)
		to, err2 := time.ParseInLocation(time.DateOnly, r.PostForm.Get("var2"), payuIST)
		if err1 != nil || err2 != nil {
			answer = map[string]any{"status": 0, "msg": "Invalid date"}
			break
		}
		rows := []any{}
		for _, p := range f.payments {
			if at := p.AddedOn.In(payuIST); !at.Before(from) && at.Before(to.AddDate(0, 0, 1)) {
				rows = append(rows, map[string]any{"id": p.MihPayID, "action": "capture", "status": "captured", "txnid": p.TxnID,
					"addedon": at.Format(time.DateTime), "amount": p.Amount, "udf1": p.Currency, "mode": "CC"})
			}
		}
		answer = map[string]any{"status": 1, "msg": "Transaction Fetched Successfully", "Transaction_details": rows}
	default:
		answer = map[string]any{"status": 0, "msg": "Invalid command"}
	}
	json.NewEncoder(w).Encode(answer)
}

// pay is the buyer paying on PayU's page with the form paygate gave:
// PayU checks the form's hash, captures the payment, and posts the
// response (status, the signed fields, mihpayid) to the webhook URL.
func (f *payuFake) pay(t *testing.T, code string, form map[string]string) webhook {
	t.Helper()
	udf := []string{form["udf1"], form["udf2"], form["udf3"], form["udf4"], form["udf5"]}
	if form["key"] != f.key || form["txnid"] != code || form["hash"] != payuHash(append(append([]string{f.key, code, form["amount"], form["productinfo"],
		form["firstname"], form["email"]}, udf...), "", "", "", "", "", f.salt)...) {
		t.Fatalf("payu: the form for %s does not verify: %v", code, form)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	p := payuPayment{MihPayID: strconv.Itoa(403993715500000000 + f.n), TxnID: code, Amount: form["amount"], Currency: form["udf1"], AddedOn: time.Now()}
	f.payments = append(f.payments, p)
	v := url.Values{"mihpayid": {p.MihPayID}, "mode": {"CC"}, "status": {"success"}, "unmappedstatus": {"captured"}, "key": {f.key},
		"txnid": {code}, "amount": {p.Amount}, "productinfo": {form["productinfo"]}, "firstname": {form["firstname"]},
		"email": {form["email"]}, "udf1": {form["udf1"]}, "udf2": {""}, "udf3": {""}, "udf4": {""}, "udf5": {""},
		"addedon": {p.AddedOn.In(payuIST).Format(time.DateTime)}, "bank_ref_num": {"E2E" + p.MihPayID}, "error": {"E000"}}
	v.Set("hash", payuHash(f.salt, "success", "", "", "", "", "", "", "", "", "", form["udf1"], form["email"], form["firstname"],
		form["productinfo"], p.Amount, code, f.key))
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return webhook{header: h, body: []byte(v.Encode())}
}

func (f *payuFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, re := range f.refunds {
		if re.TxnID == code {
			rupees, paise, _ := strings.Cut(re.Amount, ".")
			r, _ := strconv.ParseInt(rupees, 10, 64)
			p, _ := strconv.ParseInt((paise + "00")[:2], 10, 64)
			n += r*100 + p
		}
	}
	return n
}

// notices: PayU's refund outcomes are read with getAllRefundsFromTxnIds.
func (f *payuFake) notices() []webhook { return nil }
