package payu

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Answers of get_Transaction_Details, shaped exactly after the samples of
// https://docs.payu.in/reference/get_transaction_details_api (success:
// "status":1, "msg":"Transaction Fetched Successfully", the
// "Transaction_details" array whose rows carry id (the mihpayid), status
// "captured" or "failed", txnid, addedon (IST), amount, udf1, …) and of
// payu-intrepos/web-sdk-php doc/getTransactionDetails.md (no
// transactions: an empty array; an invalid date: "status":0 and a msg),
// with our references and amounts substituted. The first row's amount is
// 2^53+1 paise, which a float64 cannot hold.
const (
	txnCaptured = `{"id":"403993715521889443","status":"captured","key":"gtKFFx","merchantname":"demo",` +
		`"txnid":"T261125095957123ABCDEFGH","firstname":"Asha","lastname":"Kumar","addedon":"2026-11-25 15:29:57",` +
		`"bank_name":"Credit Card","payment_gateway":"AXISPG","phone":"9876543210","email":"asha@example.com",` +
		`"transaction_fee":"90071992547409.93","amount":"90071992547409.93","discount":"0.00","additional_charges":"0.00",` +
		`"productinfo":"Phone case","error_code":"E000","bank_ref_no":"895255","ibibo_code":"CC","mode":"CC",` +
		`"ip":"106.202.49.52","card_no":"512345XXXXXX2346","cardtype":"domestic","offer_key":"","field2":"171519",` +
		`"udf1":"INR","pg_mid":null,"offer_type":null,"failure_reason":null,"mer_service_fee":"0.00","mer_service_tax":"0.00"}`
	txnFailed = `{"id":"403993715521889519","status":"failed","key":"gtKFFx","merchantname":"demo",` +
		`"txnid":"T261125101010123IJKLMNOP","firstname":"K","lastname":"K","addedon":"2026-11-25 23:59:59",` +
		`"bank_name":"Credit Card","payment_gateway":"AXISPG","phone":"09599736876","email":"k@example.com",` +
		`"transaction_fee":"10.00","amount":"10.00","discount":"0.00","additional_charges":"0.00",` +
		`"productinfo":"Test","error_code":"E308","bank_ref_no":"","ibibo_code":"CC","mode":"CC",` +
		`"ip":"106.202.49.52","card_no":"512345XXXXXX2346","cardtype":"domestic","offer_key":"","field2":"",` +
		`"udf1":"INR","pg_mid":null,"offer_type":null,"failure_reason":"Bank was unable to authenticate.",` +
		`"mer_service_fee":"0.00","mer_service_tax":"0.00"}`
)

func txnListAnswer(rows ...string) string {
	return `{"status":1,"msg":"Transaction Fetched Successfully","Transaction_details":[` + strings.Join(rows, ",") + `]}`
}

// kolkata is the channel's zone as paygate's channels file names it.
var kolkata = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		return ist
	}
	return loc
}()

func TestSettledPayments(t *testing.T) {
	// An earlier failed try of the captured code, a pending payment and a
	// payment of the day before are left out.
	earlierTry := strings.NewReplacer(`"403993715521889443"`, `"403993715521889400"`, `"captured"`, `"failed"`,
		`15:29:57`, `15:20:00`).Replace(txnCaptured)
	pending := strings.NewReplacer(`"403993715521889519"`, `"403993715521889520"`, `"failed"`, `"pending"`,
		`T261125101010123IJKLMNOP`, `T261125101010123QRSTUVWX`).Replace(txnFailed)
	dayBefore := strings.NewReplacer(`"403993715521889519"`, `"403993715521889521"`, `2026-11-25 23:59:59`, `2026-11-24 23:59:59`,
		`T261125101010123IJKLMNOP`, `T261124101010123IJKLMNOP`).Replace(txnFailed)
	f := newFake(t, http.StatusOK, txnListAnswer(earlierTry, txnCaptured, pending, txnFailed, dayBefore))
	day := time.Date(2026, 11, 25, 13, 0, 0, 0, kolkata)
	p, err := f.channel(t).SettledPayments(context.Background(), day, "")
	if err != nil {
		t.Fatalf("SettledPayments: %v", err)
	}
	want := []psp.SettlementRow{
		{TransactionCode: code, PSPReference: "403993715521889443", Amount: domain.MustMoney(9007199254740993, "INR"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 25, 9, 59, 57, 0, time.UTC)},
		{TransactionCode: "T261125101010123IJKLMNOP", PSPReference: "403993715521889519", Amount: domain.MustMoney(1000, "INR"),
			Status: domain.PSPFailed, SettledAt: time.Date(2026, 11, 25, 18, 29, 59, 0, time.UTC)},
	}
	if p.NextPage != "" || len(p.Rows) != len(want) {
		t.Fatalf("page = %+v, want %d rows and no next page", p, len(want))
	}
	for i, r := range p.Rows {
		w := want[i]
		if r.TransactionCode != w.TransactionCode || r.PSPReference != w.PSPReference || !r.Amount.Equal(w.Amount) ||
			r.Status != w.Status || !r.SettledAt.Equal(w.SettledAt) {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	form := f.forms[0]
	if form.Get("command") != "get_Transaction_Details" || form.Get("var1") != "2026-11-25" || form.Get("var2") != "2026-11-25" ||
		form.Get("key") != testKey || form.Get("hash") != CommandHash(testKey, "get_Transaction_Details", "2026-11-25", testSalt) {
		t.Errorf("sent %v", form)
	}

	// A day in another zone asks for the IST dates it spans and keeps the
	// rows inside it: 2026-11-25 UTC is 05:30 on the 25th to 05:29:59 on
	// the 26th IST.
	f = newFake(t, http.StatusOK, txnListAnswer(txnCaptured, txnFailed, dayBefore))
	p, err = f.channel(t).SettledPayments(context.Background(), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), "")
	if err != nil || len(p.Rows) != 2 {
		t.Fatalf("UTC day: (%+v, %v), want 2 rows", p, err)
	}
	if form := f.forms[0]; form.Get("var1") != "2026-11-25" || form.Get("var2") != "2026-11-26" {
		t.Errorf("UTC day: sent %v", form)
	}

	// The currency is the one paygate put in udf1.
	f = newFake(t, http.StatusOK, txnListAnswer(strings.Replace(txnFailed, `"udf1":"INR"`, `"udf1":"USD"`, 1)))
	if p, err := f.channel(t).SettledPayments(context.Background(), day, ""); err != nil || len(p.Rows) != 1 ||
		!p.Rows[0].Amount.Equal(domain.MustMoney(1000, "USD")) {
		t.Errorf("udf1 USD: (%+v, %v)", p, err)
	}
}

func TestSettledPaymentsEmptyDay(t *testing.T) {
	f := newFake(t, http.StatusOK, `{"status":1,"msg":"Transaction Fetched Successfully","Transaction_details":[]}`)
	p, err := f.channel(t).SettledPayments(context.Background(), time.Date(2026, 11, 25, 0, 0, 0, 0, kolkata), "")
	if err != nil || len(p.Rows) != 0 || p.NextPage != "" {
		t.Errorf("empty day: (%+v, %v)", p, err)
	}
}

func TestSettledPaymentsErrors(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, kolkata)
	for _, answer := range []string{
		`<html>`,
		`{"status":1,"msg":"Transaction Fetched Successfully"}`, // no list
		`{"status":1,"msg":"Transaction Fetched Successfully","Transaction_details":{"id":"1"}}`,
		txnListAnswer(strings.Replace(txnCaptured, `"amount":"90071992547409.93"`, `"amount":"19.999"`, 1)), // three decimals for INR
		txnListAnswer(strings.Replace(txnCaptured, `"amount":"90071992547409.93"`, `"amount":"1e3"`, 1)),
		txnListAnswer(strings.Replace(txnCaptured, `"addedon":"2026-11-25 15:29:57"`, `"addedon":"25/11/2026"`, 1)),
		txnListAnswer(strings.Replace(txnCaptured, `"id":"403993715521889443"`, `"id":null`, 1)),
		txnListAnswer(strings.Replace(txnCaptured, `"txnid":"T261125095957123ABCDEFGH"`, `"txnid":""`, 1)),
	} {
		f := newFake(t, http.StatusOK, answer)
		if _, err := f.channel(t).SettledPayments(context.Background(), day, ""); !errors.Is(err, psp.ErrMalformed) {
			t.Errorf("%.80s…: %v, want ErrMalformed", answer, err)
		}
	}
	f := newFake(t, http.StatusOK, `{"status":0,"msg":"Invalid Date Entered. Date format should be yyyy-mm-dd"}`)
	var ae *APIError
	if _, err := f.channel(t).SettledPayments(context.Background(), day, ""); !errors.Is(err, psp.ErrDeclined) || !errors.As(err, &ae) {
		t.Errorf("status 0: %v, want ErrDeclined", err)
	}
	for status, temporary := range map[int]bool{500: true, 503: true, 429: true, 400: false} {
		f := newFake(t, status, "error")
		_, err := f.channel(t).SettledPayments(context.Background(), day, "")
		if psp.IsTemporary(err) != temporary || (!temporary && !errors.Is(err, psp.ErrDeclined)) {
			t.Errorf("HTTP %d: %v", status, err)
		}
	}
	if _, err := newTestChannel(t).SettledPayments(context.Background(), day, ""); !psp.IsTemporary(err) {
		t.Errorf("connection refused: %v, want temporary", err)
	}
	f = newFake(t, http.StatusOK, txnListAnswer())
	if _, err := f.channel(t).SettledPayments(context.Background(), day, "2"); err == nil || len(f.forms) != 0 {
		t.Errorf("page 2: %v (%d requests), want an error and no request", err, len(f.forms))
	}
}
