package payu

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Answers of PayU's postservice API (form=2, JSON), shaped after the
// samples of https://docs.payu.in/docs/verify-payment-api,
// https://docs.payu.in/docs/refund-transaction-api and
// https://docs.payu.in/docs/error-codes-for-refund-initiation, with our
// references substituted.
const (
	verifySuccess = `{"status":1,"msg":"1 out of 1 Transactions Fetched Successfully","transaction_details":{"T261125095957123ABCDEFGH":` +
		`{"mihpayid":"403993715521210667","request_id":"","bank_ref_num":"643495","amt":"19.99","transaction_amount":"19.99",` +
		`"txnid":"T261125095957123ABCDEFGH","additional_charges":"0.00","productinfo":"Phone case","firstname":"Asha",` +
		`"bankcode":"CC","udf1":"INR","udf2":"","udf3":"","udf4":"","udf5":"","field2":"699953","field9":"No Error",` +
		`"error_code":"E000","addedon":"2026-11-25 15:29:57","payment_source":"payu","card_type":"VISA",` +
		`"error_Message":"NO ERROR","net_amount_debit":19.99,"disc":"0.00","mode":"CC","PG_TYPE":"AXISPG",` +
		`"card_no":"512345XXXXXX2346","name_on_card":"Asha","unmappedstatus":"captured","Merchant_UTR":null,` +
		`"Settled_At":"0000-00-00 00:00:00","status":"success"}}}`
	verifyFailure = `{"status":1,"msg":"1 out of 1 Transactions Fetched Successfully","transaction_details":{"T261125095957123ABCDEFGH":` +
		`{"mihpayid":"403993715521210668","amt":"19.99","txnid":"T261125095957123ABCDEFGH","addedon":"2026-11-25 15:29:57",` +
		`"unmappedstatus":"failed","status":"failure","error_Message":"Bank was unable to authenticate."}}}`
	verifyNotFound = `{"status":0,"msg":"0 out of 1 Transactions Fetched Successfully","transaction_details":` +
		`{"T261125095957123ABCDEFGH":{"mihpayid":"Not Found","status":"Not Found"}}}`
	refundQueued = `{"status":1,"msg":"Refund Request Queued","request_id":"131278422","bank_ref_num":null,"mihpayid":403993715521210667,"error_code":102}`
	refundToken  = `{"status":0,"msg":"Token already exists","error_code":106}`
	refundBad    = `{"status":0,"msg":"Invalid amount","error_code":105}`
)

type fake struct {
	mu     sync.Mutex
	forms  []url.Values
	status int
	answer string
	srv    *httptest.Server
}

func newFake(t *testing.T, status int, answer string) *fake {
	f := &fake{status: status, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		q, _ := url.ParseQuery(string(b))
		f.mu.Lock()
		f.forms = append(f.forms, q)
		f.mu.Unlock()
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) channel(t *testing.T) *Channel {
	return newTestChannel(t, func(c *ChannelConfig) {
		c.APIURL, c.Timeout = f.srv.URL+"/merchant/postservice.php?form=2", 2*time.Second
	})
}

const code = "T261125095957123ABCDEFGH"

func TestQuery(t *testing.T) {
	f := newFake(t, http.StatusOK, verifySuccess)
	var evidence []psp.Exchange
	ctx := psp.WithRecorder(context.Background(), "query", func(e psp.Exchange) { evidence = append(evidence, e) })
	n, err := f.channel(t).Query(ctx, code)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	want := time.Date(2026, 11, 25, 9, 59, 57, 0, time.UTC)
	if n.Status != domain.PSPSucceeded || n.PSPReference != "403993715521210667" || !n.Amount.Equal(domain.MustMoney(1999, "INR")) ||
		!n.OccurredAt.Equal(want) || n.TransactionCode != code {
		t.Errorf("Query = %+v", n)
	}
	form := f.forms[0]
	if form.Get("command") != "verify_payment" || form.Get("var1") != code || form.Get("key") != testKey ||
		form.Get("hash") != CommandHash(testKey, "verify_payment", code, testSalt) {
		t.Errorf("sent %v", form)
	}
	for _, e := range evidence {
		if strings.Contains(e.URL+e.RequestBody+e.ResponseBody, testSalt) {
			t.Errorf("evidence holds the salt: %+v", e)
		}
	}
	for answer, st := range map[string]domain.PSPStatus{verifyFailure: domain.PSPFailed, verifyNotFound: domain.PSPUnknown} {
		f := newFake(t, http.StatusOK, answer)
		if n, err := f.channel(t).Query(context.Background(), code); err != nil || n.Status != st {
			t.Errorf("%s: (%+v, %v), want %v", answer, n, err, st)
		}
	}
	for _, answer := range []string{
		strings.Replace(verifySuccess, `"amt":"19.99"`, `"amt":"19.999"`, 1),      // three decimals for INR
		strings.Replace(verifySuccess, `"status":"success"`, `"status":"odd"`, 1), // unknown status
		strings.Replace(verifySuccess, code+`":`, `T-other":`, 1),                 // another transaction
		`<html>`,
	} {
		f := newFake(t, http.StatusOK, answer)
		if _, err := f.channel(t).Query(context.Background(), code); !errors.Is(err, psp.ErrMalformed) {
			t.Errorf("%.60s…: %v, want ErrMalformed", answer, err)
		}
	}
}

func TestErrorsClassified(t *testing.T) {
	for status, temporary := range map[int]bool{500: true, 502: true, 429: true, 408: true, 400: false, 403: false} {
		f := newFake(t, status, "error")
		_, err := f.channel(t).Query(context.Background(), code)
		if psp.IsTemporary(err) != temporary || (!temporary && !errors.Is(err, psp.ErrDeclined)) {
			t.Errorf("HTTP %d: %v", status, err)
		}
	}
	if _, err := newTestChannel(t).Query(context.Background(), code); !psp.IsTemporary(err) {
		t.Errorf("connection refused: %v, want temporary", err)
	}
}

func TestRefund(t *testing.T) {
	req := psp.RefundRequest{RefundRef: "R-1001", TransactionCode: code, PSPReference: "403993715521210667", Amount: domain.MustMoney(500, "INR")}
	f := newFake(t, http.StatusOK, refundQueued)
	res, err := f.channel(t).Refund(context.Background(), req)
	if err != nil || res.Status != psp.RefundPending || res.PSPReference != "131278422" || res.RefundRef != "R-1001" {
		t.Fatalf("Refund = (%+v, %v)", res, err)
	}
	form := f.forms[0]
	if form.Get("command") != "cancel_refund_transaction" || form.Get("var1") != "403993715521210667" || form.Get("var2") != "R-1001" ||
		form.Get("var3") != "5.00" || form.Get("hash") != CommandHash(testKey, "cancel_refund_transaction", "403993715521210667", testSalt) {
		t.Errorf("sent %v", form)
	}
	f = newFake(t, http.StatusOK, refundToken)
	if res, err := f.channel(t).Refund(context.Background(), req); err != nil || res.Status != psp.RefundPending {
		t.Errorf("retry with a known token: (%+v, %v), want pending", res, err)
	}
	f = newFake(t, http.StatusOK, refundBad)
	var ae *APIError
	if _, err := f.channel(t).Refund(context.Background(), req); !errors.Is(err, psp.ErrDeclined) || !errors.As(err, &ae) || ae.Code != "105" {
		t.Errorf("invalid amount: %v, want ErrDeclined with code 105", err)
	}
	usd := req
	usd.Amount = domain.MustMoney(500, "USD")
	if _, err := f.channel(t).Refund(context.Background(), usd); !errors.Is(err, psp.ErrDeclined) {
		t.Errorf("USD refund: %v, want ErrDeclined", err)
	}
}

func TestInitiate(t *testing.T) {
	ch := newTestChannel(t)
	req := psp.InitiateRequest{TransactionCode: code, OrderID: "A1001", Amount: domain.MustMoney(1999, "INR"),
		Description: "Phone | case", BuyerEmail: "asha@example.com", ReturnURL: "https://gw.example/v1/return/payu"}
	s, err := ch.Initiate(context.Background(), req)
	if err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	f := s.Form
	if s.PayURL != TestPaymentURL || f["amount"] != "19.99" || f["txnid"] != code || f["productinfo"] != "Phone / case" || f["udf1"] != "INR" ||
		f["surl"] != req.ReturnURL || f["furl"] != req.ReturnURL || f["firstname"] != DefaultFirstName {
		t.Errorf("session %+v", s)
	}
	if f["hash"] != RequestHash(testKey, code, "19.99", "Phone / case", DefaultFirstName, "asha@example.com", [5]string{"INR"}, testSalt) {
		t.Errorf("hash %s", f["hash"])
	}
	for k, v := range f {
		if strings.Contains(v, testSalt) {
			t.Errorf("form field %s holds the salt", k)
		}
	}
	again, _ := ch.Initiate(context.Background(), req)
	if again.Form["hash"] != f["hash"] {
		t.Errorf("a second Initiate differs")
	}
	for _, m := range []domain.Money{domain.MustMoney(1999, "USD"), domain.MustMoney(120000, "JPY"), domain.MustMoney(1999, "KWD")} {
		r := req
		r.Amount = m
		if _, err := ch.Initiate(context.Background(), r); !errors.Is(err, psp.ErrDeclined) {
			t.Errorf("%s: %v, want ErrDeclined", m, err)
		}
	}
	c := ch.Capabilities()
	if !c.ConfirmByQuery || !c.PartialRefund || !c.Settlement || c.RefundCallbacks {
		t.Errorf("capabilities %+v", c)
	}
	if _, err := ch.QueryRefund(context.Background(), "R"); !errors.Is(err, psp.ErrUnsupported) {
		t.Errorf("QueryRefund: %v", err)
	}
}
