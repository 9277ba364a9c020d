package wechatpay

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// API v3 routes.
const (
	pathNative       = "/v3/pay/transactions/native"
	pathH5           = "/v3/pay/transactions/h5"
	pathByOutTradeNo = "/v3/pay/transactions/out-trade-no/"
	pathRefunds      = "/v3/refund/domestic/refunds"
)

type amountJSON struct {
	Total    int64  `json:"total"`
	Currency string `json:"currency,omitempty"`
}

type sceneInfo struct {
	PayerClientIP string `json:"payer_client_ip"`
	H5Info        struct {
		Type string `json:"type"`
	} `json:"h5_info"`
}

type prepayRequest struct {
	AppID       string     `json:"appid"`
	MchID       string     `json:"mchid"`
	Description string     `json:"description"`
	OutTradeNo  string     `json:"out_trade_no"`
	NotifyURL   string     `json:"notify_url"`
	Amount      amountJSON `json:"amount"`
	SceneInfo   *sceneInfo `json:"scene_info,omitempty"`
}

// transactionJSON is a payment as the query API answers it and as a
// callback's decrypted resource states it.
type transactionJSON struct {
	AppID          string `json:"appid"`
	MchID          string `json:"mchid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id"`
	TradeType      string `json:"trade_type"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	SuccessTime    string `json:"success_time"`
	Amount         struct {
		Total         *int64 `json:"total"`
		PayerTotal    *int64 `json:"payer_total"`
		Currency      string `json:"currency"`
		PayerCurrency string `json:"payer_currency"`
	} `json:"amount"`
}

// Trade states of API v3.
const (
	stateSuccess    = "SUCCESS"
	stateRefund     = "REFUND" // paid, then a refund was made: it was paid
	stateNotPay     = "NOTPAY"
	stateUserPaying = "USERPAYING"
	stateClosed     = "CLOSED"
	stateRevoked    = "REVOKED"
	statePayError   = "PAYERROR"
)

// Initiate places the order (Native: a code_url for a QR code; H5: an
// h5_url) under out_trade_no = the transaction code. WeChat answers a
// repeat of the same order with the same code_url, so a retry after an
// unknown outcome is safe. Only CNY is accepted (domestic API v3).
func (c *Channel) Initiate(ctx context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.Session{}, fmt.Errorf("wechatpay %s: transaction code and a positive amount are required: %w", op, psp.ErrDeclined)
	}
	if cur := req.Amount.Currency().Code(); cur != "CNY" {
		return psp.Session{}, fmt.Errorf("wechatpay %s: currency %s: only CNY is accepted: %w", op, cur, psp.ErrDeclined)
	}
	desc := req.Description
	if desc == "" {
		desc = req.OrderID
	}
	desc = truncateUTF8(desc, 127)
	in := prepayRequest{AppID: c.cfg.AppID, MchID: c.cfg.MchID, Description: desc, OutTradeNo: req.TransactionCode,
		NotifyURL: req.NotifyURL, Amount: amountJSON{Total: req.Amount.Minor(), Currency: "CNY"}}
	path := pathNative
	if c.cfg.Mode == ModeH5 {
		if req.BuyerIP == "" {
			return psp.Session{}, fmt.Errorf("wechatpay %s: H5 payments need the buyer's IP: %w", op, psp.ErrDeclined)
		}
		in.SceneInfo = &sceneInfo{PayerClientIP: req.BuyerIP}
		in.SceneInfo.H5Info.Type = "Wap"
		path = pathH5
	}
	status, body, err := c.call(ctx, op, http.MethodPost, path, in)
	if err != nil {
		return psp.Session{}, err
	}
	if status != http.StatusOK {
		return psp.Session{}, classify(op, status, body)
	}
	var v struct {
		CodeURL string `json:"code_url"`
		H5URL   string `json:"h5_url"`
	}
	if err := decodeJSON(body, &v); err != nil {
		return psp.Session{}, malformed(op, err)
	}
	s := psp.Session{}
	switch {
	case c.cfg.Mode == ModeNative && v.CodeURL != "":
		s.PayURL, s.Token = v.CodeURL, v.CodeURL
	case c.cfg.Mode == ModeH5 && v.H5URL != "":
		s.PayURL = v.H5URL
		if req.ReturnURL != "" {
			// WeChat sends the browser back to redirect_url after H5 pay.
			s.PayURL += "&redirect_url=" + url.QueryEscape(req.ReturnURL)
		}
	default:
		return psp.Session{}, malformed(op, fmt.Errorf("answer has no pay URL for mode %s", c.cfg.Mode))
	}
	return s, nil
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Query asks for the payment by out_trade_no. ORDER_NOT_EXIST is
// PSPUnknown. The amount is amount.total in amount.currency (what the
// order was paid for; payer_total may be lower by coupons WeChat funds).
func (c *Channel) Query(ctx context.Context, transactionCode string) (domain.Notification, error) {
	const op = "query"
	p := pathByOutTradeNo + url.PathEscape(transactionCode) + "?mchid=" + url.QueryEscape(c.cfg.MchID)
	status, body, err := c.call(ctx, op, http.MethodGet, p, nil)
	if err != nil {
		return domain.Notification{}, err
	}
	if notExist(status, body) {
		return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, nil
	}
	if status != http.StatusOK {
		return domain.Notification{}, classify(op, status, body)
	}
	var v transactionJSON
	if err := decodeJSON(body, &v); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	if v.OutTradeNo != transactionCode {
		return domain.Notification{}, malformed(op, fmt.Errorf("answer for %q, asked for %q", v.OutTradeNo, transactionCode))
	}
	n, err := c.transaction(v)
	if err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	return n, nil
}

// transaction reads a payment statement (query answer or callback
// resource) of this merchant.
func (c *Channel) transaction(v transactionJSON) (domain.Notification, error) {
	if v.MchID != c.cfg.MchID {
		return domain.Notification{}, fmt.Errorf("payment of merchant %q, this channel is %q", v.MchID, c.cfg.MchID)
	}
	if v.OutTradeNo == "" {
		return domain.Notification{}, fmt.Errorf("no out_trade_no")
	}
	n := domain.Notification{TransactionCode: v.OutTradeNo, PSPReference: v.TransactionID}
	switch v.TradeState {
	case stateSuccess, stateRefund:
		n.Status = domain.PSPSucceeded
		t, err := time.Parse(time.RFC3339, v.SuccessTime)
		if err != nil {
			return domain.Notification{}, fmt.Errorf("success_time %q: %v", v.SuccessTime, err)
		}
		n.OccurredAt = t.UTC()
		if v.TransactionID == "" {
			return domain.Notification{}, fmt.Errorf("paid without transaction_id")
		}
	case stateNotPay, stateUserPaying:
		n.Status = domain.PSPPending
	case stateClosed, stateRevoked, statePayError:
		n.Status = domain.PSPFailed
	default:
		return domain.Notification{}, fmt.Errorf("unknown trade_state %q", v.TradeState)
	}
	if v.Amount.Total == nil {
		return domain.Notification{}, fmt.Errorf("no amount.total")
	}
	cur := v.Amount.Currency
	if cur == "" {
		cur = "CNY" // the field is optional and CNY is its default
	}
	m, err := domain.NewMoney(*v.Amount.Total, cur)
	if err != nil {
		return domain.Notification{}, err
	}
	n.Amount = m
	return n, nil
}

type refundRequest struct {
	OutTradeNo  string `json:"out_trade_no"`
	OutRefundNo string `json:"out_refund_no"`
	Reason      string `json:"reason,omitempty"`
	Amount      struct {
		Refund   int64  `json:"refund"`
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

type refundJSON struct {
	RefundID    string `json:"refund_id"`
	OutRefundNo string `json:"out_refund_no"`
	OutTradeNo  string `json:"out_trade_no"`
	Status      string `json:"status"`
	Amount      struct {
		Refund   *int64 `json:"refund"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

// Refund asks for req.Amount back from the payment of
// req.TransactionCode under out_refund_no = req.RefundRef (WeChat answers
// a repeat with the same refund). WeChat wants the order's total beside
// the refund, so the payment is queried first; a payment that is not paid
// is refused (psp.ErrDeclined) without a refund call.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.RefundResult{}, fmt.Errorf("wechatpay %s: refund ref, transaction code and a positive amount are required: %w", op, psp.ErrDeclined)
	}
	paid, err := c.Query(ctx, req.TransactionCode)
	if err != nil {
		return psp.RefundResult{}, err
	}
	switch {
	case paid.Status == domain.PSPUnknown:
		return psp.RefundResult{}, fmt.Errorf("wechatpay %s: payment %s: %w", op, req.TransactionCode, psp.ErrNotFound)
	case paid.Status != domain.PSPSucceeded:
		return psp.RefundResult{}, fmt.Errorf("wechatpay %s: payment %s is %s: %w", op, req.TransactionCode, paid.Status, psp.ErrDeclined)
	case paid.Amount.Currency() != req.Amount.Currency():
		return psp.RefundResult{}, fmt.Errorf("wechatpay %s: refund in %s of a payment in %s: %w", op,
			req.Amount.Currency().Code(), paid.Amount.Currency().Code(), psp.ErrDeclined)
	}
	in := refundRequest{OutTradeNo: req.TransactionCode, OutRefundNo: req.RefundRef, Reason: truncateUTF8(req.Reason, 80)}
	in.Amount.Refund, in.Amount.Total, in.Amount.Currency = req.Amount.Minor(), paid.Amount.Minor(), req.Amount.Currency().Code()
	status, body, err := c.call(ctx, op, http.MethodPost, pathRefunds, in)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	return refundResult(op, body, req.RefundRef)
}

// QueryRefund asks for a refund by out_refund_no; RESOURCE_NOT_EXISTS is
// RefundUnknown.
func (c *Channel) QueryRefund(ctx context.Context, refundRef string) (psp.RefundResult, error) {
	const op = "query_refund"
	status, body, err := c.call(ctx, op, http.MethodGet, pathRefunds+"/"+url.PathEscape(refundRef), nil)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if notExist(status, body) {
		return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
	}
	if status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	return refundResult(op, body, refundRef)
}

// refundResult reads a refund. SUCCESS is succeeded, PROCESSING pending,
// CLOSED failed; ABNORMAL (the buyer's account cannot take the money
// back, the merchant must act in WeChat's portal) is failed too: the
// money is not back, and only a person can resolve it.
func refundResult(op string, body []byte, refundRef string) (psp.RefundResult, error) {
	var v refundJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	if v.OutRefundNo != refundRef || v.RefundID == "" {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("answer for refund %q, asked for %q", v.OutRefundNo, refundRef))
	}
	r := psp.RefundResult{RefundRef: refundRef, PSPReference: v.RefundID}
	switch v.Status {
	case "SUCCESS":
		r.Status = psp.RefundSucceeded
	case "PROCESSING":
		r.Status = psp.RefundPending
	case "CLOSED", "ABNORMAL":
		r.Status = psp.RefundFailed
	default:
		return psp.RefundResult{}, malformed(op, fmt.Errorf("unknown refund status %q", v.Status))
	}
	if v.Amount.Refund == nil {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("no amount.refund"))
	}
	cur := v.Amount.Currency
	if cur == "" {
		cur = "CNY"
	}
	m, err := domain.NewMoney(*v.Amount.Refund, cur)
	if err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	r.Amount = m
	return r, nil
}
