package wechatpay

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// The daily trade bill (申请交易账单 GET /v3/bill/tradebill, then 下载账单
// GET download_url): pay.weixin.qq.com/doc/v3/merchant/4012556654 and
// 4012084430; its columns: pay.weixin.qq.com/docs/merchant/products/
// bill-download/format-trade.html.
const (
	pathTradeBill = "/v3/bill/tradebill"
	// maxBill bounds a downloaded bill (one merchant's day).
	maxBill = 64 << 20
	// billReadyAfter is when, after the end of the bill's day (Beijing),
	// WeChat's bill is due: generation starts at 09:00 the next day and
	// WeChat advises fetching after 10:00.
	billReadyAfter = 10 * time.Hour
)

// wechatHosts are WeChat Pay's API hosts (main and backup domain): a
// bill's download_url may name one of them, or the configured BaseURL's.
var wechatHosts = []string{"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com"}

// Error codes of the bill API (its FAQ, pay.weixin.qq.com/doc/v3/merchant/
// 4013071254): NO_STATEMENT_EXIST when the merchant had no trade or
// refund that day; STATEMENT_CREATING while the bill is being made.
const (
	codeNoStatement       = "NO_STATEMENT_EXIST"
	codeStatementCreating = "STATEMENT_CREATING"
)

// Columns of the trade bill read here, by their header names (the file
// names its columns; older merchants' files name the order amount 总金额
// and lack 订单金额).
const (
	colTradeTime  = "交易时间"
	colMchID      = "商户号"
	colTxID       = "微信订单号"
	colOutTradeNo = "商户订单号"
	colState      = "交易状态"
	colCurrency   = "货币种类"
	colOrderTotal = "订单金额" // the order's total: amount.total of the query API
	colOldTotal   = "总金额"  // the same in the early file format
	summaryFirst  = "总交易单数"
)

// billTime is 交易时间's layout, in Beijing time.
const billTime = "2006-01-02 15:04:05"

// SettledPayments lists the payments of WeChat's SUCCESS trade bill of
// day's calendar date in day's location (WeChat's bill days are Beijing
// days: pass Asia/Shanghai). It is one page: page must be "", NextPage
// is "".
//
// The bill's download_url is fetched, signed like every request, only
// from WeChat's API host or the configured BaseURL's; the file is not
// signed by WeChat, so it is checked against the SHA1 the signed bill
// answer gave. Each SUCCESS row is a payment: out_trade_no, the WeChat
// transaction_id, the order amount (yuan, read exactly) and the payment
// time (Beijing).
//
// A day that has not ended has no bill yet: its list is empty and no
// request is made. NO_STATEMENT_EXIST means a day without trades (an
// empty list) once the bill is due (10:00 Beijing the next day), and is
// a temporary error before; STATEMENT_CREATING is a temporary error.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	if page != "" {
		return psp.SettlementPage{}, fmt.Errorf("wechatpay %s: page %q: the bill is one page: %w", op, page, psp.ErrMalformed)
	}
	y, m, d := day.Date()
	billDate := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	now := c.cfg.Now()
	localEnd := time.Date(y, m, d+1, 0, 0, 0, 0, day.Location())
	ready := time.Date(y, m, d+1, 0, 0, 0, 0, beijing).Add(billReadyAfter)
	empty := psp.SettlementPage{Rows: []psp.SettlementRow{}}
	if now.Before(localEnd) && now.Before(ready) {
		return empty, nil
	}
	status, body, err := c.call(ctx, op, http.MethodGet, pathTradeBill+"?bill_date="+billDate+"&bill_type=SUCCESS", nil)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	if status != http.StatusOK {
		switch ae := apiError(status, body); ae.Code {
		case codeNoStatement:
			if !now.Before(ready) {
				return empty, nil
			}
			return psp.SettlementPage{}, &psp.TemporaryError{Op: "wechatpay " + op,
				Err: fmt.Errorf("bill of %s not due before %s: %w", billDate, ready.Format(time.RFC3339), ae)}
		case codeStatementCreating:
			return psp.SettlementPage{}, &psp.TemporaryError{Op: "wechatpay " + op, Err: ae}
		}
		return psp.SettlementPage{}, classify(op, status, body)
	}
	var v struct {
		HashType    string `json:"hash_type"`
		HashValue   string `json:"hash_value"`
		DownloadURL string `json:"download_url"`
	}
	if err := decodeJSON(body, &v); err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	want, err := hex.DecodeString(v.HashValue)
	if !strings.EqualFold(v.HashType, "SHA1") || err != nil || len(want) != sha1.Size {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("bill hash %s %q is not a SHA1", v.HashType, v.HashValue))
	}
	target, pathQuery, err := c.downloadTarget(v.DownloadURL)
	if err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	// The download answer carries no Wechatpay-Signature: the hash of the
	// signed bill answer vouches for it.
	status, _, file, err := c.send(ctx, op, http.MethodGet, target, pathQuery, nil, false, "", maxBill)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	if status != http.StatusOK {
		return psp.SettlementPage{}, classify(op, status, file)
	}
	if got := sha1.Sum(file); subtle.ConstantTimeCompare(got[:], want) != 1 {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("bill SHA1 %x, the bill answer says %s", got, v.HashValue))
	}
	rows, err := c.tradeBill(file)
	if err != nil {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("bill of %s: %v", billDate, err))
	}
	return psp.SettlementPage{Rows: rows}, nil
}

// downloadTarget checks a bill's download_url and returns it with the
// path and query to sign. Only https to WeChat's API hosts, or the
// configured BaseURL's scheme and host, are accepted: the request carries
// the merchant's signature and its answer is trusted by hash only.
func (c *Channel) downloadTarget(raw string) (target, pathQuery string, err error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", "", fmt.Errorf("download_url: %v", err)
	}
	base, err := url.Parse(c.base)
	if err != nil {
		return "", "", fmt.Errorf("base URL: %v", err)
	}
	ok := u.User == nil && u.Opaque == "" && u.Fragment == "" && u.Host != ""
	switch {
	case !ok:
	case u.Scheme == "https" && isWeChatHost(u.Host):
	case strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host):
	default:
		ok = false
	}
	if !ok {
		return "", "", fmt.Errorf("download_url %q is not on WeChat's API host or %s", raw, base.Host)
	}
	return u.String(), u.RequestURI(), nil
}

func isWeChatHost(host string) bool {
	for _, h := range wechatHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// tradeBill reads a trade bill: a header line naming the columns, detail
// lines whose every field starts with a backtick, then the summary header
// (总交易单数,…) and one summary line, whose first field is the number of
// detail lines. Rows whose 交易状态 is not SUCCESS are left out; every row
// must be of this merchant.
func (c *Channel) tradeBill(file []byte) ([]psp.SettlementRow, error) {
	text := strings.TrimPrefix(string(file), "\uFEFF")
	var (
		col                    map[string]int
		width, details         int
		inSummary, summaryRead bool
		rows                   = []psp.SettlementRow{}
	)
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		switch {
		case col == nil:
			names := strings.Split(line, ",")
			width, col = len(names), make(map[string]int, len(names))
			for i, name := range names {
				col[strings.TrimPrefix(strings.TrimSpace(name), "`")] = i
			}
			for _, need := range []string{colTradeTime, colMchID, colTxID, colOutTradeNo, colState, colCurrency} {
				if _, ok := col[need]; !ok {
					return nil, fmt.Errorf("header has no %s column", need)
				}
			}
			if _, ok := col[colOrderTotal]; !ok {
				i, old := col[colOldTotal]
				if !old {
					return nil, fmt.Errorf("header has no %s column", colOrderTotal)
				}
				col[colOrderTotal] = i
			}
		case !inSummary && strings.HasPrefix(line, summaryFirst):
			inSummary = true
		case !inSummary:
			details++
			f, err := billFields(line, width)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
			if f[col[colState]] != stateSuccess {
				continue
			}
			r, err := c.billRow(f, col)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
			rows = append(rows, r)
		case !summaryRead:
			f, err := billFields(line, 0)
			if err != nil {
				return nil, fmt.Errorf("summary: %v", err)
			}
			if count, err := strconv.Atoi(f[0]); err != nil || count != details {
				return nil, fmt.Errorf("summary counts %q trades, the bill lists %d", f[0], details)
			}
			summaryRead = true
		default:
			return nil, fmt.Errorf("line %d: data after the summary", n+1)
		}
	}
	if col == nil || !summaryRead {
		return nil, fmt.Errorf("no header or no summary (truncated bill)")
	}
	return rows, nil
}

// billFields splits a detail or summary line: each field starts with a
// backtick, so fields are split at ",`" (a comma inside a field, in a
// product name, does not split it). width 0 takes any number.
func billFields(line string, width int) ([]string, error) {
	if !strings.HasPrefix(line, "`") {
		return nil, fmt.Errorf("fields do not start with a backtick")
	}
	f := strings.Split(line[1:], ",`")
	if width > 0 && len(f) != width {
		return nil, fmt.Errorf("%d fields, the header names %d", len(f), width)
	}
	return f, nil
}

// billRow reads one SUCCESS detail line.
func (c *Channel) billRow(f []string, col map[string]int) (psp.SettlementRow, error) {
	if mch := f[col[colMchID]]; mch != c.cfg.MchID {
		return psp.SettlementRow{}, fmt.Errorf("payment of merchant %q, this channel is %q", mch, c.cfg.MchID)
	}
	r := psp.SettlementRow{TransactionCode: f[col[colOutTradeNo]], PSPReference: f[col[colTxID]], Status: domain.PSPSucceeded}
	if r.TransactionCode == "" || r.PSPReference == "" {
		return psp.SettlementRow{}, fmt.Errorf("no %s or %s", colOutTradeNo, colTxID)
	}
	cur := f[col[colCurrency]]
	if cur == "" {
		cur = "CNY"
	}
	amount, err := domain.ParseDecimal(f[col[colOrderTotal]], cur)
	if err != nil {
		return psp.SettlementRow{}, fmt.Errorf("%s of %s: %v", colOrderTotal, r.TransactionCode, err)
	}
	r.Amount = amount
	// Beijing time is UTC+8 all year (Asia/Shanghai has had no DST since
	// 1991), so a fixed zone reads it without the tz database.
	at, err := time.ParseInLocation(billTime, f[col[colTradeTime]], beijing)
	if err != nil {
		return psp.SettlementRow{}, fmt.Errorf("%s of %s: %v", colTradeTime, r.TransactionCode, err)
	}
	r.SettledAt = at.UTC()
	return r, nil
}
