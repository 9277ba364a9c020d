package alipay

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// methodBillURL asks for the download address of a day's bill.
const methodBillURL = "alipay.data.dataservice.bill.downloadurl.query"

// Bounds of a bill: the zipped download (the same as psp.Transport keeps
// of an answer it records, beyond which the body it hands on is cut),
// the files in it, and what one file may inflate to.
const (
	maxBillZip   = 4 << 20
	maxBillFiles = 16
	maxBillFile  = 64 << 20
)

// Sub-codes of a bill that does not exist (yet): isp.bill_not_exist is
// what the gateway answers; BILL_NOT_EXIST is the name the API
// reference gives it.
var billNotReady = []string{"isp.bill_not_exist", "BILL_NOT_EXIST"}

// Columns of the trade bill's detail file (业务明细) that are read.
const (
	colTradeNo    = "支付宝交易号"
	colOutTradeNo = "商户订单号"
	colBizType    = "业务类型"
	colFinished   = "完成时间"
	colAmount     = "订单金额（元）"
)

// bizTrade is the 业务类型 of a payment row; refunds are "退款".
const bizTrade = "交易"

// SettledPayments lists the trades of Alipay's daily trade bill of day's
// calendar date (in day's location; the bill is of that date in Beijing
// time): alipay.data.dataservice.bill.downloadurl.query (bill_type
// "trade") answers a short-lived bill_download_url, which is fetched
// through the recording client — only on an Alipay host, the gateway's
// host or ChannelConfig.BillHosts — as a ZIP of GBK CSV files. Every row
// of the detail file (业务明细) whose 业务类型 is 交易 is a succeeded
// payment: 商户订单号 the transaction code, 支付宝交易号 the reference,
// 订单金额（元） the amount in CNY, 完成时间 (Beijing) the time. Refund
// rows (退款) and rows without 商户订单号 are skipped. The list is one
// page. A bill not generated yet (isp.bill_not_exist) is temporary.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	if page != "" {
		return psp.SettlementPage{}, fmt.Errorf("alipay %s: page %q: the bill is one page: %w", op, page, psp.ErrMalformed)
	}
	date := day.Format("2006-01-02")
	var v struct {
		BillDownloadURL string `json:"bill_download_url"`
	}
	biz := struct {
		BillType string `json:"bill_type"`
		BillDate string `json:"bill_date"`
	}{"trade", date}
	if err := c.call(ctx, op, methodBillURL, biz, &v); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && slices.Contains(billNotReady, ae.SubCode) {
			return psp.SettlementPage{}, &psp.TemporaryError{Op: "alipay " + op, Err: fmt.Errorf("bill of %s not ready: %w", date, ae)}
		}
		return psp.SettlementPage{}, err
	}
	u, err := c.billURL(v.BillDownloadURL)
	if err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	b, err := c.download(ctx, op, u)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	rows, err := parseBill(b)
	if err != nil {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("bill of %s: %v", date, err))
	}
	return psp.SettlementPage{Rows: rows}, nil
}

// billURL checks that a bill_download_url may be fetched: http(s),
// without credentials, on an Alipay host (alipay.com, alipaydev.com and
// their subdomains), the gateway's host or one of BillHosts. Anything
// else is refused before any request: the bill is Alipay's, and an
// address that points elsewhere is not followed.
func (c *Channel) billURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("answer has no bill_download_url")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("bill_download_url %q is not an http(s) URL", raw)
	}
	host := strings.ToLower(u.Hostname())
	for _, d := range []string{"alipay.com", "alipaydev.com"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return u, nil
		}
	}
	if g, err := url.Parse(c.cfg.GatewayURL); err == nil && strings.EqualFold(g.Host, u.Host) {
		return u, nil
	}
	for _, h := range c.cfg.BillHosts {
		if strings.EqualFold(h, u.Host) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("bill_download_url host %q is not Alipay's: not followed", u.Host)
}

// download GETs the bill through the recording client; errors are
// classified as the gateway calls' are. Redirects are not followed.
func (c *Channel) download(ctx context.Context, op string, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("alipay %s: %w", op, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, &psp.TemporaryError{Op: "alipay " + op, Err: fmt.Errorf("bill download: %w", err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBillZip+1))
	if err != nil {
		return nil, &psp.TemporaryError{Op: "alipay " + op, Err: fmt.Errorf("read bill: %w", err)}
	}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return nil, &psp.TemporaryError{Op: "alipay " + op, Err: fmt.Errorf("bill download: HTTP %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("alipay %s: bill download: HTTP %d: %w", op, resp.StatusCode, psp.ErrDeclined)
	case len(b) > maxBillZip:
		return nil, malformed(op, fmt.Errorf("bill over %d bytes", maxBillZip))
	}
	return b, nil
}

// parseBill reads the rows of the detail file(s) of a zipped trade
// bill. Files are told apart by content, not name (the names are GBK
// without the ZIP UTF-8 flag): a detail file is one with a header row
// naming every column read; the summary file (业务汇总) has none.
func parseBill(b []byte) ([]psp.SettlementRow, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("not a zip: %v", err)
	}
	if len(zr.File) > maxBillFiles {
		return nil, fmt.Errorf("%d files in the bill", len(zr.File))
	}
	rows := []psp.SettlementRow{}
	details := 0
	for i, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("file %d: %v", i, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxBillFile+1))
		_ = rc.Close()
		switch {
		case err != nil:
			return nil, fmt.Errorf("file %d: %v", i, err)
		case len(data) > maxBillFile:
			return nil, fmt.Errorf("file %d inflates over %d bytes", i, maxBillFile)
		}
		text, err := decodeBillText(data)
		if err != nil {
			return nil, fmt.Errorf("file %d: %v", i, err)
		}
		got, ok, err := parseDetail(text)
		if err != nil {
			return nil, fmt.Errorf("file %d: %v", i, err)
		}
		if ok {
			details++
			rows = append(rows, got...)
		}
	}
	if details == 0 {
		return nil, errors.New("no detail file (业务明细) in the bill")
	}
	return rows, nil
}

// decodeBillText is the file as UTF-8: Alipay writes its bills in GBK;
// a file that is valid UTF-8 already (a BOM dropped) is taken as it is.
func decodeBillText(b []byte) (string, error) {
	if utf8.Valid(b) {
		return strings.TrimPrefix(string(b), "\uFEFF"), nil
	}
	out, err := simplifiedchinese.GBK.NewDecoder().Bytes(b)
	if err != nil {
		return "", fmt.Errorf("not GBK: %v", err)
	}
	return string(out), nil
}

// parseDetail reads one CSV file. Lines starting with "#" (the title,
// account, dates, the list's start and end rules, the totals and export
// time) are not rows. ok is false for a file without the detail header.
// Alipay ends text fields with a tab (to keep spreadsheets from reading
// long numbers as floats): fields are trimmed.
func parseDetail(text string) (rows []psp.SettlementRow, ok bool, err error) {
	r := csv.NewReader(strings.NewReader(text))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var idx map[string]int
	width := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if idx == nil {
			if slices.Contains(rec, colTradeNo) {
				idx = map[string]int{}
				for i, name := range rec {
					idx[name] = i
				}
				for _, want := range []string{colTradeNo, colOutTradeNo, colBizType, colFinished, colAmount} {
					if _, ok := idx[want]; !ok {
						return nil, false, fmt.Errorf("detail header has no %s column", want)
					}
				}
				width = len(rec)
			}
			continue
		}
		if len(rec) == 1 && rec[0] == "" {
			continue
		}
		line, _ := r.FieldPos(0)
		if len(rec) != width {
			return nil, true, fmt.Errorf("line %d: %d fields, the header has %d", line, len(rec), width)
		}
		if rec[idx[colBizType]] != bizTrade || rec[idx[colOutTradeNo]] == "" {
			continue // a refund (退款), or a trade paygate did not create
		}
		row := psp.SettlementRow{TransactionCode: rec[idx[colOutTradeNo]], PSPReference: rec[idx[colTradeNo]], Status: domain.PSPSucceeded}
		if row.PSPReference == "" {
			return nil, true, fmt.Errorf("line %d: trade without %s", line, colTradeNo)
		}
		if row.Amount, err = domain.ParseDecimal(rec[idx[colAmount]], "CNY"); err != nil {
			return nil, true, fmt.Errorf("line %d: %s: %v", line, colAmount, err)
		}
		if row.SettledAt, err = parseTime(rec[idx[colFinished]]); err != nil {
			return nil, true, fmt.Errorf("line %d: %s: %v", line, colFinished, err)
		}
		rows = append(rows, row)
	}
	return rows, idx != nil, nil
}
