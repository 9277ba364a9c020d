package adyen

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// The daily Payment accounting report
// (https://docs.adyen.com/reporting/invoice-reconciliation/payment-accounting-report):
// one line per status change of every payment of a merchant account, on
// the day (in the account's time zone setting) it was booked. Adyen
// generates the daily reports between 02:00 and 10:00 CET for the
// previous day (https://docs.adyen.com/reporting/automatically-get-reports)
// and serves them from the Customer Area at
// https://ca-{test,live}.adyen.com/reports/download/MerchantAccount/{merchant account}/{file name},
// to a GET authenticated as a report user (HTTP basic authentication) or
// with the API key of a user with the Merchant Report role; the
// REPORT_AVAILABLE webhook names the same URL in its reason field.
const (
	// TestReportBaseURL and LiveReportBaseURL are the Customer Area's
	// report download addresses, without the merchant account.
	TestReportBaseURL = "https://ca-test.adyen.com/reports/download/MerchantAccount"
	LiveReportBaseURL = "https://ca-live.adyen.com/reports/download/MerchantAccount"
	// DefaultReportGrace is how long after a day's end its report may be
	// missing before the day counts as having none: Adyen makes a day's
	// report by 10:00 CET the next day, which is within 24 h of the end
	// of the day in every time zone an account can be set to.
	DefaultReportGrace = 24 * time.Hour
	// maxReport bounds a downloaded report (one merchant account's day).
	maxReport = 64 << 20
	// reportTimeout is the least time a report download is given.
	reportTimeout = 2 * time.Minute
	// reportPrefix and reportSuffix make the file name of a day's report.
	reportPrefix = "payment_accounting_report_"
	reportSuffix = ".csv"
)

// Columns of the Payment accounting report read here, by their header
// names (the report names its columns, and an account may add columns or
// change their order).
const (
	colMerchantAccount = "Merchant Account"
	colPSPReference    = "Psp Reference"
	colMerchantRef     = "Merchant Reference"
	colBookingDate     = "Booking Date"
	colTimeZone        = "TimeZone"
	colMainCurrency    = "Main Currency"
	colMainAmount      = "Main Amount"
	colRecordType      = "Record Type"
)

// recordCaptured is the record type listed as a settled payment.
// Adyen's statuses (https://docs.adyen.com/reporting/reports-and-the-payments-lifecycle):
// SentForSettle is "request capture of funds from shopper" — booked once
// per capture, and with automatic capture (which the adapter requires)
// right after the authorisation, so on the day paygate marks the attempt
// paid; Settled is "funds captured are released to merchant payable",
// booked when the payout batch closes, days later, and belongs to the
// payout, not to the payment's day. SentForSettle is therefore the
// record that says "this payment was captured", on its day.
const recordCaptured = "SentForSettle"

// bookingTime is the Booking Date's layout ("2021-07-26 19:58:55").
const bookingTime = "2006-01-02 15:04:05"

// reportZones are the offsets of the time zone codes the TimeZone column
// carries (Adyen: "the ISO code for your time zone setting", at most 4
// letters). Abbreviations that name several zones (CST, IST) are left
// out: a code not listed here (and not an IANA name) makes the report
// unreadable rather than guessed.
var reportZones = map[string]int{
	"UTC": 0, "GMT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2,
	"EET": 2, "EEST": 3, "MSK": 3, "GST": 4, "HKT": 8, "SGT": 8, "AWST": 8, "JST": 9, "KST": 9,
	"AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "BRT": -3, "ART": -3, "EST": -5, "EDT": -4,
	"MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
}

var errReportCreds = errors.New("report credentials")

// validateReport checks the report settings (c has its defaults). The
// credentials must never end up in a URL: the base URL may carry none.
func (c ChannelConfig) validateReport() error {
	u, err := url.Parse(c.ReportBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("adyen channel %s: ReportBaseURL %q is not an absolute http(s) URL without credentials or query", c.Name, c.ReportBaseURL)
	}
	if (c.ReportUsername == "") != (c.ReportPassword == "") {
		return fmt.Errorf("adyen channel %s: %w: ReportUsername and ReportPassword go together", c.Name, errReportCreds)
	}
	if c.ReportUsername != "" && c.ReportAPIKey != "" {
		return fmt.Errorf("adyen channel %s: %w: set a report user or a report API key, not both", c.Name, errReportCreds)
	}
	if c.ReportGrace < 0 {
		return fmt.Errorf("adyen channel %s: negative ReportGrace", c.Name)
	}
	return nil
}

// reportURL is the address of the report of day's calendar date.
func (c *Channel) reportURL(day time.Time) (string, string) {
	y, m, d := day.Date()
	name := fmt.Sprintf("%s%04d_%02d_%02d%s", reportPrefix, y, m, d, reportSuffix)
	return strings.TrimRight(c.cfg.ReportBaseURL, "/") + "/" + url.PathEscape(c.cfg.MerchantAccount) + "/" + name, name
}

// SettledPayments lists the payments captured on day's calendar date, as
// the merchant account's daily Payment accounting report lists them
// (pass the account's time zone setting as the channel's zone: the
// report's days are its days). It is one page: page must be "", NextPage
// is "".
//
// Each SentForSettle record of this merchant account is a payment
// (recordCaptured says why not Settled): Merchant Reference (paygate's
// transaction code), Psp Reference, Main Amount in Main Currency (read
// exactly, with Adyen's decimals) and the Booking Date in the record's
// TimeZone. Records of other merchant accounts (a company-level report
// lists several) and of other types are left out.
//
// A day that has not ended has no report yet: its list is empty and no
// request is made. A missing report (404) is a temporary error until
// ReportGrace after the end of the day, and psp.ErrNotFound after.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	if page != "" {
		return psp.SettlementPage{}, fmt.Errorf("adyen %s: page %q: the report is one page: %w", op, page, psp.ErrMalformed)
	}
	y, m, d := day.Date()
	end := time.Date(y, m, d+1, 0, 0, 0, 0, day.Location())
	now := c.cfg.Now()
	if now.Before(end) {
		return psp.SettlementPage{Rows: []psp.SettlementRow{}}, nil
	}
	target, name := c.reportURL(day)
	status, file, err := c.download(ctx, op, target)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	switch {
	case status == http.StatusNotFound:
		due := end.Add(c.cfg.ReportGrace)
		if now.Before(due) {
			return psp.SettlementPage{}, &psp.TemporaryError{Op: "adyen " + op,
				Err: fmt.Errorf("%s not available yet (due by %s)", name, due.Format(time.RFC3339))}
		}
		return psp.SettlementPage{}, fmt.Errorf("adyen %s: %s: %w (HTTP 404 after %s)", op, name, psp.ErrNotFound, due.Format(time.RFC3339))
	case status != http.StatusOK:
		return psp.SettlementPage{}, classify(op, status, file)
	}
	rows, err := c.paymentAccounting(file)
	if err != nil {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("%s: %v", name, err))
	}
	return psp.SettlementPage{Rows: rows}, nil
}

// download GETs a report from the configured report host, with the report
// credentials in a header only (never in the URL, so evidence never holds
// them), and without following redirects. Network errors and a body cut
// short are temporary.
func (c *Channel) download(ctx context.Context, op, target string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("adyen %s: %w", op, err)
	}
	req.Header.Set("Accept", "text/csv")
	if c.cfg.ReportUsername != "" {
		req.SetBasicAuth(c.cfg.ReportUsername, c.cfg.ReportPassword)
	} else {
		req.Header.Set("X-API-Key", c.cfg.ReportAPIKey)
	}
	resp, err := c.reports.Do(req)
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "adyen " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReport+1))
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "adyen " + op, Err: fmt.Errorf("read report: %w", err)}
	}
	if len(b) > maxReport {
		return 0, nil, fmt.Errorf("adyen %s: report over %d bytes: %w", op, maxReport, psp.ErrMalformed)
	}
	if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return 0, nil, &psp.TemporaryError{Op: "adyen " + op,
			Err: fmt.Errorf("report of %d bytes, Content-Length says %d", len(b), resp.ContentLength)}
	}
	return resp.StatusCode, b, nil
}

// paymentAccounting reads a Payment accounting report: a header line
// naming the columns, then one record per line, every line as wide as
// the header (RFC 4180 quoting).
func (c *Channel) paymentAccounting(file []byte) ([]psp.SettlementRow, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(file, []byte("\uFEFF"))))
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %v", err)
	}
	col := make(map[string]int, len(header))
	for i, name := range header {
		col[strings.TrimSpace(name)] = i
	}
	for _, need := range []string{colMerchantAccount, colPSPReference, colMerchantRef, colBookingDate, colTimeZone,
		colMainCurrency, colMainAmount, colRecordType} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("header has no %s column", need)
		}
	}
	r.FieldsPerRecord = len(header)
	rows := []psp.SettlementRow{}
	for {
		f, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if f[col[colMerchantAccount]] != c.cfg.MerchantAccount || f[col[colRecordType]] != recordCaptured {
			continue
		}
		row, err := reportRow(f, col)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// reportRow reads one SentForSettle record of the channel's account.
func reportRow(f []string, col map[string]int) (psp.SettlementRow, error) {
	r := psp.SettlementRow{TransactionCode: f[col[colMerchantRef]], PSPReference: f[col[colPSPReference]], Status: domain.PSPSucceeded}
	if r.TransactionCode == "" || r.PSPReference == "" {
		return psp.SettlementRow{}, fmt.Errorf("no %s or %s", colMerchantRef, colPSPReference)
	}
	amount, err := reportAmount(f[col[colMainAmount]], f[col[colMainCurrency]])
	if err != nil {
		return psp.SettlementRow{}, fmt.Errorf("%s of %s: %v", colMainAmount, r.PSPReference, err)
	}
	r.Amount = amount
	loc, err := reportZone(f[col[colTimeZone]])
	if err != nil {
		return psp.SettlementRow{}, fmt.Errorf("%s of %s: %v", colTimeZone, r.PSPReference, err)
	}
	at, err := time.ParseInLocation(bookingTime, f[col[colBookingDate]], loc)
	if err != nil {
		return psp.SettlementRow{}, fmt.Errorf("%s of %s: %v", colBookingDate, r.PSPReference, err)
	}
	r.SettledAt = at.UTC()
	return r, nil
}

// reportAmount reads a report amount (a plain decimal in units of the
// currency) exactly. Adyen writes an amount with its own decimals
// (amount.go: CLP and ISK with 2, IDR and CVE with 0), so digits past
// the fewer of Adyen's and ISO 4217's decimals must be zeros — they are
// dropped, never rounded — and a fraction domain.Money cannot hold (CLP
// 1500.50) is refused.
func reportAmount(s, code string) (domain.Money, error) {
	c, err := domain.ParseCurrency(code)
	if err != nil {
		return domain.Money{}, err
	}
	if intPart, frac, ok := strings.Cut(s, "."); ok {
		keep := min(exponent(c), c.Exponent())
		if len(frac) > keep {
			if strings.Trim(frac[keep:], "0") != "" {
				return domain.Money{}, fmt.Errorf("%s %s: %w: %s has %d decimals at Adyen", s, code, errAmount, code, exponent(c))
			}
			frac = frac[:keep]
		}
		s = intPart
		if frac != "" {
			s += "." + frac
		}
	}
	m, err := domain.ParseDecimal(s, code)
	if err != nil {
		return domain.Money{}, err
	}
	if m.Minor() <= 0 {
		return domain.Money{}, fmt.Errorf("%s %s: %w: not positive", s, code, errAmount)
	}
	return m, nil
}

// reportZone is the location of a TimeZone code: a listed abbreviation,
// or an IANA name.
func reportZone(code string) (*time.Location, error) {
	if h, ok := reportZones[code]; ok {
		return time.FixedZone(code, h*3600), nil
	}
	if strings.Contains(code, "/") {
		return time.LoadLocation(code)
	}
	return nil, fmt.Errorf("unknown time zone %q", code)
}
