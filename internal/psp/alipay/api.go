package alipay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Open API methods used.
const (
	methodPagePay     = "alipay.trade.page.pay"
	methodQuery       = "alipay.trade.query"
	methodRefund      = "alipay.trade.refund"
	methodRefundQuery = "alipay.trade.fastpay.refund.query"
)

// maxBody bounds an answer read.
const maxBody = 1 << 20

// signedParams are the common parameters of a request for method with
// biz_content, signed (sign_type included in what is signed, as Alipay's
// request signing wants).
func (c *Channel) signedParams(method string, biz any, extra map[string]string) (url.Values, error) {
	bc, err := bizJSON(biz)
	if err != nil {
		return nil, err
	}
	p := url.Values{
		"app_id": {c.cfg.AppID}, "method": {method}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {c.cfg.Now().In(beijing).Format(timeLayout)}, "version": {"1.0"},
		"biz_content": {bc},
	}
	for k, v := range extra {
		if v != "" {
			p.Set(k, v)
		}
	}
	content, err := signContent(p, false)
	if err != nil {
		return nil, err
	}
	sig, err := rsa2Sign(c.cfg.PrivateKey, []byte(content))
	if err != nil {
		return nil, err
	}
	p.Set("sign", sig)
	return p, nil
}

// call posts one signed request to the gateway and returns the verified
// "<method>_response" object. A business error (code ≠ 10000) is
// returned as *APIError, classified.
func (c *Channel) call(ctx context.Context, op, method string, biz any, out any) error {
	p, err := c.signedParams(method, biz, nil)
	if err != nil {
		return fmt.Errorf("alipay %s: sign: %w", op, err)
	}
	body := []byte(p.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.GatewayURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alipay %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	resp, err := c.client.Do(req)
	if err != nil {
		return &psp.TemporaryError{Op: "alipay " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return &psp.TemporaryError{Op: "alipay " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	switch {
	case len(b) > maxBody:
		return malformed(op, fmt.Errorf("answer over %d bytes", maxBody))
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return &psp.TemporaryError{Op: "alipay " + op, Err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("alipay %s: HTTP %d: %w", op, resp.StatusCode, psp.ErrDeclined)
	}
	// The signature covers the response object's bytes exactly as sent:
	// json.RawMessage keeps them.
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		return malformed(op, err)
	}
	key := strings.ReplaceAll(method, ".", "_") + "_response"
	raw, ok := env[key]
	if !ok {
		return malformed(op, fmt.Errorf("answer has no %s", key))
	}
	var head struct {
		Code    string `json:"code"`
		Msg     string `json:"msg"`
		SubCode string `json:"sub_code"`
		SubMsg  string `json:"sub_msg"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return malformed(op, err)
	}
	var sig string
	if s, ok := env["sign"]; ok {
		if err := json.Unmarshal(s, &sig); err != nil {
			return malformed(op, fmt.Errorf("sign: %v", err))
		}
	}
	// Alipay signs every answer it builds; errors from the gateway's
	// parameter checks (40001/40002) may come unsigned, and are only
	// ever read as a refusal.
	if sig != "" || head.Code == "10000" {
		if err := rsa2Verify(c.cfg.AlipayPublicKeys, raw, sig); err != nil {
			return malformed(op, fmt.Errorf("answer signature: %v", err))
		}
	}
	if head.Code != "10000" {
		return classify(op, &APIError{Code: head.Code, Msg: head.Msg, SubCode: head.SubCode, SubMsg: head.SubMsg})
	}
	if err := decodeJSON(raw, out); err != nil {
		return malformed(op, err)
	}
	return nil
}

// decodeJSON reads one JSON value; amounts are strings in Alipay's
// answers, so no number ever goes through a float.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// money reads an Alipay amount: a decimal in major units of trans
// currency if the trade has one (cross-border pricing), else CNY.
func money(amount, transCurrency string) (domain.Money, error) {
	cur := transCurrency
	if cur == "" {
		cur = "CNY"
	}
	return domain.ParseDecimal(amount, cur)
}

type pageBiz struct {
	OutTradeNo     string `json:"out_trade_no"`
	TotalAmount    string `json:"total_amount"`
	Subject        string `json:"subject"`
	ProductCode    string `json:"product_code"`
	TimeoutExpress string `json:"timeout_express"`
	TransCurrency  string `json:"trans_currency,omitempty"`
}

// Initiate builds the signed alipay.trade.page.pay request the buyer's
// browser takes to the gateway: PayURL is the gateway with the signed
// parameters as its query (GET), Form the same parameters for a POST.
// It makes no call: Alipay creates the trade when the buyer arrives, and
// a repeat with the same out_trade_no (the transaction code) is the same
// trade. A currency other than CNY is sent as trans_currency, the
// pricing currency of cross-border merchants. PSPReference is empty
// until Alipay assigns a trade_no.
func (c *Channel) Initiate(_ context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.Session{}, fmt.Errorf("alipay %s: transaction code and a positive amount are required: %w", op, psp.ErrDeclined)
	}
	subject := req.Description
	if subject == "" {
		subject = req.OrderID
	}
	if subject == "" {
		subject = req.TransactionCode
	}
	biz := pageBiz{OutTradeNo: req.TransactionCode, TotalAmount: req.Amount.Decimal(), Subject: truncateRunes(subject, 256),
		ProductCode: c.cfg.ProductCode, TimeoutExpress: strconv.Itoa(int(c.cfg.PayTimeout/time.Minute)) + "m"}
	if cur := req.Amount.Currency().Code(); cur != "CNY" {
		biz.TransCurrency = cur
	}
	p, err := c.signedParams(methodPagePay, biz, map[string]string{"notify_url": req.NotifyURL, "return_url": req.ReturnURL})
	if err != nil {
		return psp.Session{}, fmt.Errorf("alipay %s: sign: %w", op, err)
	}
	form := make(map[string]string, len(p))
	for k, v := range p {
		form[k] = v[0]
	}
	return psp.Session{PayURL: c.cfg.GatewayURL + "?" + p.Encode(), Form: form, ExpiresAt: c.cfg.Now().Add(c.cfg.PayTimeout).UTC()}, nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

type queryAnswer struct {
	TradeNo       string `json:"trade_no"`
	OutTradeNo    string `json:"out_trade_no"`
	TradeStatus   string `json:"trade_status"`
	TotalAmount   string `json:"total_amount"`
	TransCurrency string `json:"trans_currency"`
	SendPayDate   string `json:"send_pay_date"`
}

// Trade statuses.
const (
	tradeWaitBuyerPay = "WAIT_BUYER_PAY"
	tradeClosed       = "TRADE_CLOSED"
	tradeSuccess      = "TRADE_SUCCESS"
	tradeFinished     = "TRADE_FINISHED"
)

func tradeStatus(s string) (domain.PSPStatus, error) {
	switch s {
	case tradeSuccess, tradeFinished:
		return domain.PSPSucceeded, nil
	case tradeWaitBuyerPay:
		return domain.PSPPending, nil
	case tradeClosed:
		// Unpaid and timed out, or fully refunded after payment: either
		// way no money stays with the merchant.
		return domain.PSPFailed, nil
	}
	return domain.PSPStatus{}, fmt.Errorf("unknown trade_status %q", s)
}

// Query asks alipay.trade.query for the trade of out_trade_no:
// TRADE_SUCCESS and TRADE_FINISHED are succeeded (amount total_amount,
// time send_pay_date), WAIT_BUYER_PAY pending, TRADE_CLOSED failed;
// ACQ.TRADE_NOT_EXIST (the buyer never reached the cashier) is
// PSPUnknown.
func (c *Channel) Query(ctx context.Context, transactionCode string) (domain.Notification, error) {
	const op = "query"
	var v queryAnswer
	err := c.call(ctx, op, methodQuery, map[string]string{"out_trade_no": transactionCode}, &v)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.SubCode == "ACQ.TRADE_NOT_EXIST" {
			return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, nil
		}
		return domain.Notification{}, err
	}
	if v.OutTradeNo != transactionCode {
		return domain.Notification{}, malformed(op, fmt.Errorf("answer for %q, asked for %q", v.OutTradeNo, transactionCode))
	}
	n := domain.Notification{TransactionCode: v.OutTradeNo, PSPReference: v.TradeNo}
	if n.Status, err = tradeStatus(v.TradeStatus); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	if n.Amount, err = money(v.TotalAmount, v.TransCurrency); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	if n.Status == domain.PSPSucceeded {
		if v.TradeNo == "" {
			return domain.Notification{}, malformed(op, fmt.Errorf("paid without trade_no"))
		}
		if v.SendPayDate != "" {
			if n.OccurredAt, err = parseTime(v.SendPayDate); err != nil {
				return domain.Notification{}, malformed(op, err)
			}
		}
	}
	return n, nil
}

type refundBiz struct {
	OutTradeNo     string `json:"out_trade_no"`
	RefundAmount   string `json:"refund_amount"`
	RefundCurrency string `json:"refund_currency,omitempty"`
	OutRequestNo   string `json:"out_request_no"`
	RefundReason   string `json:"refund_reason,omitempty"`
}

// Refund asks alipay.trade.refund for req.Amount back from the trade of
// req.TransactionCode, with out_request_no = req.RefundRef: Alipay
// refunds once per out_request_no, so a retry is safe. fund_change "Y"
// is a refund done now; "N" (a repeat, or money not moved yet) is
// resolved at once with alipay.trade.fastpay.refund.query.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.RefundResult{}, fmt.Errorf("alipay %s: refund ref, transaction code and a positive amount are required: %w", op, psp.ErrDeclined)
	}
	c.remember(req.RefundRef, req.TransactionCode)
	biz := refundBiz{OutTradeNo: req.TransactionCode, RefundAmount: req.Amount.Decimal(), OutRequestNo: req.RefundRef,
		RefundReason: truncateRunes(req.Reason, 256)}
	if cur := req.Amount.Currency().Code(); cur != "CNY" {
		biz.RefundCurrency = cur
	}
	var v struct {
		TradeNo    string `json:"trade_no"`
		OutTradeNo string `json:"out_trade_no"`
		FundChange string `json:"fund_change"`
	}
	if err := c.call(ctx, op, methodRefund, biz, &v); err != nil {
		return psp.RefundResult{}, err
	}
	if v.OutTradeNo != req.TransactionCode {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("answer for trade %q, asked for %q", v.OutTradeNo, req.TransactionCode))
	}
	if v.FundChange == "Y" {
		// Alipay has no id of its own for a refund: out_request_no is it.
		return psp.RefundResult{RefundRef: req.RefundRef, PSPReference: v.TradeNo, Status: psp.RefundSucceeded, Amount: req.Amount}, nil
	}
	return c.queryRefund(ctx, req.RefundRef, req.TransactionCode)
}

func (c *Channel) remember(refundRef, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.refunds) >= 100000 {
		clear(c.refunds) // a bound, not a cache policy: see QueryRefund
	}
	c.refunds[refundRef] = code
}

// QueryRefund asks alipay.trade.fastpay.refund.query about a refund.
// That API needs the trade (out_trade_no) beside out_request_no, and the
// port gives only the refund ref: the adapter knows the trade of the
// refunds this process asked for. For any other refund it answers
// RefundUnknown — which makes the refunds group call Refund again with
// the same ref, and Alipay refunds once per out_request_no, so that is
// safe. Callers that know the refunded attempt use QueryRefundByReference
// (psp.QueryRefundOf), which any process can answer.
func (c *Channel) QueryRefund(ctx context.Context, refundRef string) (psp.RefundResult, error) {
	c.mu.Lock()
	code, ok := c.refunds[refundRef]
	c.mu.Unlock()
	if !ok {
		return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
	}
	return c.queryRefund(ctx, refundRef, code)
}

// QueryRefundByReference asks Alipay about a refund of the attempt
// q.TransactionCode (out_trade_no) with our reference (out_request_no):
// every process can, not only the one that made the refund.
func (c *Channel) QueryRefundByReference(ctx context.Context, q psp.RefundQuery) (psp.RefundResult, error) {
	if q.TransactionCode == "" {
		return c.QueryRefund(ctx, q.RefundRef)
	}
	return c.queryRefund(ctx, q.RefundRef, q.TransactionCode)
}

func (c *Channel) queryRefund(ctx context.Context, refundRef, code string) (psp.RefundResult, error) {
	const op = "query_refund"
	var v struct {
		TradeNo       string `json:"trade_no"`
		OutTradeNo    string `json:"out_trade_no"`
		OutRequestNo  string `json:"out_request_no"`
		RefundAmount  string `json:"refund_amount"`
		RefundStatus  string `json:"refund_status"`
		TransCurrency string `json:"trans_currency"`
	}
	err := c.call(ctx, op, methodRefundQuery, map[string]string{"out_trade_no": code, "out_request_no": refundRef}, &v)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.SubCode == "ACQ.TRADE_NOT_EXIST" {
			return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
		}
		return psp.RefundResult{}, err
	}
	if v.OutRequestNo == "" {
		// Success with no refund data: Alipay has no such refund.
		return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
	}
	if v.OutRequestNo != refundRef {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("answer for refund %q, asked for %q", v.OutRequestNo, refundRef))
	}
	r := psp.RefundResult{RefundRef: refundRef, PSPReference: v.TradeNo, Status: psp.RefundPending}
	if v.RefundStatus == "REFUND_SUCCESS" {
		r.Status = psp.RefundSucceeded
	}
	if r.Amount, err = money(v.RefundAmount, v.TransCurrency); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	return r, nil
}
