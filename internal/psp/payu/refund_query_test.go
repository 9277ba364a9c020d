package payu

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// refundsOf is an answer shaped after the sample of
// https://docs.payu.in/reference/get_all_refunds_from_transaction_ids_api,
// with our references substituted: two refunds of one payment, ours
// (token Rmine) in the given status.
func refundsOf(status string) string {
	return `{"status":1,"msg":"Refunds fetched successfully.","Refund Details":{"403993715521210667":[` +
		`{"PayuID":"403993715521210667","RequestID":"131278422","RefundToken":"Rother","PaymentGateway":"AXISPG","Amount":"10.00",` +
		`"Status":"success","RefundCreationDate":"2026-11-25 01:23:19","bank_ref_no":"527013524405","bank_arn":null,"success_at":"2026-11-25 01:24:04"},` +
		`{"PayuID":"403993715521210667","RequestID":131278430,"RefundToken":"Rmine","PaymentGateway":"AXISPG","Amount":"5.00",` +
		`"Status":"` + status + `","RefundCreationDate":"2026-11-25 01:29:13","bank_ref_no":null,"bank_arn":null,"success_at":null}]}}`
}

func TestQueryRefundByReference(t *testing.T) {
	q := psp.RefundQuery{RefundRef: "Rmine", TransactionCode: code, PaymentPSPReference: "403993715521210667"}
	cases := []struct {
		answer string
		want   psp.RefundStatus
	}{
		{refundsOf("success"), psp.RefundSucceeded},
		{refundsOf("SUCCESS"), psp.RefundSucceeded},
		{refundsOf("failure"), psp.RefundFailed},
		{refundsOf("queued"), psp.RefundPending},
		{refundsOf("in progress"), psp.RefundPending},
		{refundsOf("requested"), psp.RefundPending},
		{refundsOf("pending"), psp.RefundPending},
	}
	for _, c := range cases {
		f := newFake(t, http.StatusOK, c.answer)
		ch := f.channel(t)
		var _ psp.RefundReferenceQuerier = ch
		got, err := psp.QueryRefundOf(context.Background(), ch, q)
		if err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		want := psp.RefundResult{RefundRef: "Rmine", PSPReference: "131278430", Status: c.want, Amount: domain.MustMoney(500, "INR")}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
		form := f.forms[0]
		if form.Get("command") != refundsCommand || form.Get("var1") != code ||
			form.Get("hash") != CommandHash(testKey, refundsCommand, code, testSalt) {
			t.Errorf("request %v", form)
		}
	}
}

func TestQueryRefundByReferenceNotFoundAndRefusals(t *testing.T) {
	q := psp.RefundQuery{RefundRef: "Rnever", TransactionCode: code}
	for _, answer := range []string{refundsOf("success"), `{"status":0,"msg":"No refunds found"}`} {
		got, err := newFake(t, http.StatusOK, answer).channel(t).QueryRefundByReference(context.Background(), q)
		if err != nil || got.Status != psp.RefundUnknown {
			t.Errorf("%s: %+v, %v; want unknown", answer, got, err)
		}
	}
	mine := psp.RefundQuery{RefundRef: "Rmine", TransactionCode: code}
	cases := map[string]struct {
		q      psp.RefundQuery
		status int
		answer string
		want   error
	}{
		"odd status":          {mine, http.StatusOK, refundsOf("maybe"), psp.ErrMalformed},
		"not JSON":            {mine, http.StatusOK, "<html>", psp.ErrMalformed},
		"another payment":     {psp.RefundQuery{RefundRef: "Rmine", TransactionCode: code, PaymentPSPReference: "1"}, http.StatusOK, refundsOf("success"), psp.ErrMalformed},
		"no transaction code": {psp.RefundQuery{RefundRef: "Rmine"}, http.StatusOK, refundsOf("success"), psp.ErrUnsupported},
		"declined":            {mine, http.StatusForbidden, "no", psp.ErrDeclined},
	}
	for name, c := range cases {
		_, err := newFake(t, c.status, c.answer).channel(t).QueryRefundByReference(context.Background(), c.q)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	_, err := newFake(t, http.StatusBadGateway, "busy").channel(t).QueryRefundByReference(context.Background(), mine)
	if !psp.IsTemporary(err) {
		t.Errorf("502: %v, want temporary", err)
	}
}

func TestQueryRefundByReferenceTellsDuplicateTokensByRequestID(t *testing.T) {
	answer := `{"status":1,"msg":"ok","Refund Details":{"403993715521210667":[` +
		`{"PayuID":"403993715521210667","RequestID":"1","RefundToken":"Rmine","Amount":"5.00","Status":"failure"},` +
		`{"PayuID":"403993715521210667","RequestID":"2","RefundToken":"Rmine","Amount":"5.00","Status":"success"}]}}`
	ch := newFake(t, http.StatusOK, answer).channel(t)
	got, err := ch.QueryRefundByReference(context.Background(), psp.RefundQuery{RefundRef: "Rmine", TransactionCode: code, PSPReference: "2"})
	if err != nil || got.Status != psp.RefundSucceeded || got.PSPReference != "2" {
		t.Errorf("by request id: %+v, %v", got, err)
	}
	if _, err := ch.QueryRefundByReference(context.Background(), psp.RefundQuery{RefundRef: "Rmine", TransactionCode: code}); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("without request id: %v, want ErrMalformed", err)
	}
}
