package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Schema names, for Validate. Each names the file <name>.json in this
// package, whose $id is https://paygate.dev/schemas/<name>.v1.json.
const (
	// PayRequestSchema is the schema of PayRequest (POST /v1/payments and
	// paygate.pay-requests.v1). It is strict: unknown fields are refused.
	PayRequestSchema = "pay-request"
	// PaySessionSchema is the schema of PaySession (paygate.pay-sessions.v1).
	PaySessionSchema = "pay-session"
	// PSPCallbackSchema is the schema of RawCallback (paygate.psp-callbacks.v1).
	PSPCallbackSchema = "psp-callback"
	// PaymentEventSchema is the schema of PaymentEvent (paygate.payments.v1).
	PaymentEventSchema = "payment-event"
	// RefundRequestSchema is the schema of RefundRequest (POST /v1/refunds
	// and paygate.refund-requests.v1). It is strict like PayRequestSchema.
	RefundRequestSchema = "refund-request"
	// RefundResultSchema is the schema of RefundResult
	// (paygate.refund-results.v1).
	RefundResultSchema = "refund-result"
	// ReconRecordSchema is the schema of ReconRecord
	// (paygate.reconciliation.v1).
	ReconRecordSchema = "recon-record"
	// ReconMismatchSchema is the schema of ReconMismatch
	// (paygate.recon-mismatches.v1).
	ReconMismatchSchema = "recon-mismatch"
	// RoutingFeedbackSchema is the schema of routing feedback
	// (paygate.routing-feedback.v1).
	RoutingFeedbackSchema = "routing-feedback"
	// RiskReviewSchema is the schema of RiskReviewDecision (POST
	// /v1/risk/reviews/{order_id}). It is strict.
	RiskReviewSchema = "risk-review"
)

// schemaNames lists every schema; each has a file <name>.json embedded below.
var schemaNames = []string{PayRequestSchema, PaySessionSchema, PSPCallbackSchema, PaymentEventSchema,
	RefundRequestSchema, RefundResultSchema, ReconRecordSchema, ReconMismatchSchema, RoutingFeedbackSchema, RiskReviewSchema}

//go:embed pay-request.json pay-session.json psp-callback.json payment-event.json refund-request.json refund-result.json recon-record.json recon-mismatch.json routing-feedback.json risk-review.json
var schemaFiles embed.FS

// ErrUnknownSchema is returned by Validate for a name that is not one of
// the *Schema constants: a programming error, not a bad document.
var ErrUnknownSchema = errors.New("unknown schema")

// ValidationError is the error Validate returns for a document that is not
// valid JSON or does not match its schema. It is permanent: the same bytes
// never become valid, so a consumer dead-letters them and the ingress
// answers 400.
type ValidationError struct {
	// Schema is the name of the schema validated against.
	Schema string
	// Problems are sorted, deduplicated leaf problems, each
	// "<JSON pointer>: <message>", e.g. "/amount: must be integer, got
	// number 19.99" or "/return_urls/success: missing". The document root
	// is written "(root)". Invalid JSON gives one problem naming how many
	// bytes were read before the error (json.SyntaxError.Offset); bytes
	// CheckJSON refuses give its one problem (a *JSONError's text, e.g.
	// `/buyer/id: key "id" repeated at byte 58 (first at byte 40)`). Problems
	// quote the offending value (strings cut to 64 characters), which may
	// be personal data such as an email: log them with that in mind.
	Problems []string
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	return "invalid " + e.Schema + ": " + strings.Join(e.Problems, "; ")
}

// compiled holds the schemas, compiled once on first use and then shared:
// a compiled *jsonschema.Schema is read-only, so concurrent Validate calls
// are safe.
var compiled = sync.OnceValues(compile)

// Validate checks doc, a JSON document, against the named schema (one of
// the *Schema constants). It returns nil, a *ValidationError, or
// ErrUnknownSchema (wrapped). It first runs CheckJSON: a document that is
// not UTF-8, or has a repeated key at any depth, is refused with that one
// problem, before a decoder can rewrite or pick among its bytes. Numbers are decoded exactly (json.Number), so
// 19.99 is never mistaken for an integer, and integral floats such as
// 1999.0 are refused as amounts too. Formats (date-time, uri, ipv4, ipv6)
// and base64 content are asserted, not just annotated.
func Validate(schema string, doc []byte) error {
	all, err := compiled()
	if err != nil {
		return err
	}
	sch, ok := all[schema]
	if !ok {
		return fmt.Errorf("validate: %w %q", ErrUnknownSchema, schema)
	}
	if err := CheckJSON(doc); err != nil {
		return &ValidationError{Schema: schema, Problems: []string{err.Error()}}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return &ValidationError{Schema: schema, Problems: []string{syntaxProblem(doc, err)}}
	}
	err = sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate %s: %w", schema, err)
	}
	var ps []problem
	collect(ve, v, &ps)
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	if len(out) == 0 { // cannot happen with our schemas; never answer an empty list
		out = append(out, ve.Error())
	}
	slices.Sort(out)
	return &ValidationError{Schema: schema, Problems: slices.Compact(out)}
}

// compile compiles every embedded schema. Format and content assertion are
// switched on: draft 2020-12 treats both as annotations by default, which
// would let "2026-13-45" through as a date-time.
func compile() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	c.RegisterFormat(&jsonschema.Format{Name: "int64", Validate: validateInt64})
	ids := make(map[string]string, len(schemaNames))
	for _, name := range schemaNames {
		b, err := schemaFiles.ReadFile(name + ".json")
		if err != nil {
			return nil, fmt.Errorf("schemas: read %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schemas: parse %s.json: %w", name, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("schemas: %s.json has no $id", name)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("schemas: add %s.json: %w", name, err)
		}
		ids[name] = id
	}
	out := make(map[string]*jsonschema.Schema, len(ids))
	for name, id := range ids {
		sch, err := c.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s.json: %w", name, err)
		}
		out[name] = sch
	}
	return out, nil
}

// validateInt64 implements the "int64" format (OpenAPI's name) for amounts:
// the JSON number must be written as a plain integer that fits an int64.
// JSON Schema's "integer" alone accepts 1999.0 and 1.999e3 (their value is
// integral), which encoding/json then refuses to decode into an int64, and
// which suggest a float crept into the sender's money handling.
func validateInt64(v any) error {
	n, ok := v.(json.Number)
	if !ok {
		return nil // not a number: "type" reports it
	}
	_, err := strconv.ParseInt(string(n), 10, 64)
	if err == nil {
		return nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return errors.New("out of int64 range")
	}
	return errors.New("has a fraction or exponent")
}

// syntaxProblem describes why doc is not one JSON value. jsonschema's
// decoder does not expose the offset, so the error path re-parses with
// encoding/json, whose *json.SyntaxError has it.
func syntaxProblem(doc []byte, decodeErr error) string {
	var v any
	var se *json.SyntaxError
	if err := json.Unmarshal(doc, &v); errors.As(err, &se) {
		return fmt.Sprintf("(root): invalid JSON after %d bytes: %v", se.Offset, se)
	}
	return "(root): invalid JSON: " + decodeErr.Error()
}

// problem is one leaf validation failure.
type problem struct {
	ptr    string // JSON pointer of the instance location
	want   string // "must be integer", "missing"
	got    string // what was there, e.g. `number 19.99`; may be empty
	detail string // why, for formats; may be empty
}

func (p problem) String() string {
	ptr := p.ptr
	if ptr == "" {
		ptr = "(root)"
	}
	s := ptr + ": " + p.want
	if p.got != "" {
		s += ", got " + p.got
	}
	if p.detail != "" {
		s += " (" + p.detail + ")"
	}
	return s
}

// collect flattens the library's error tree to its leaves. Alternatives
// (anyOf, oneOf) that each fail with a single problem at the same place
// are merged into one "must be A or B" problem.
func collect(ve *jsonschema.ValidationError, doc any, out *[]problem) {
	switch k := ve.ErrorKind.(type) {
	case *kind.AnyOf:
		collectAlternatives(ve, doc, out)
		return
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			collectAlternatives(ve, doc, out)
			return
		}
	}
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, doc, out)
		}
		return
	}
	*out = append(*out, leaf(ve, doc)...)
}

func collectAlternatives(ve *jsonschema.ValidationError, doc any, out *[]problem) {
	ptr := pointer(ve.InstanceLocation)
	var branches [][]problem
	mergeable := len(ve.Causes) > 0
	for _, c := range ve.Causes {
		var b []problem
		collect(c, doc, &b)
		branches = append(branches, b)
		if mergeable && (len(b) != 1 || b[0].ptr != ptr || b[0].got != branches[0][0].got) {
			mergeable = false
		}
	}
	if !mergeable {
		for _, b := range branches {
			*out = append(*out, b...)
		}
		return
	}
	wants := make([]string, len(branches))
	for i, b := range branches {
		wants[i] = strings.TrimPrefix(b[0].want, "must be ")
	}
	*out = append(*out, problem{ptr: ptr, want: "must be " + strings.Join(wants, " or "), got: branches[0][0].got})
}

// formatNames are the human names of the formats our schemas use.
var formatNames = map[string]string{
	"date-time": "an RFC 3339 date-time",
	"uri":       "an absolute URL",
	"ipv4":      "an IPv4 address",
	"ipv6":      "an IPv6 address",
	"int64":     "a plain integer (minor units)",
}

// leaf turns one leaf error into problems (several for "required" and
// "additionalProperties", one per field, at the field's own pointer).
func leaf(ve *jsonschema.ValidationError, doc any) []problem {
	loc := ve.InstanceLocation
	ptr := pointer(loc)
	val, _ := valueAt(doc, loc)
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		ps := make([]problem, 0, len(k.Missing))
		for _, m := range k.Missing {
			ps = append(ps, problem{ptr: pointer(append(slices.Clip(loc), m)), want: "missing"})
		}
		return ps
	case *kind.DependentRequired:
		ps := make([]problem, 0, len(k.Missing))
		for _, m := range k.Missing {
			ps = append(ps, problem{ptr: pointer(append(slices.Clip(loc), m)), want: "missing (required with " + k.Prop + ")"})
		}
		return ps
	case *kind.AdditionalProperties:
		ps := make([]problem, 0, len(k.Properties))
		for _, p := range k.Properties {
			ps = append(ps, problem{ptr: pointer(append(slices.Clip(loc), p)), want: "unknown field"})
		}
		return ps
	case *kind.Type:
		return []problem{{ptr: ptr, want: "must be " + strings.Join(k.Want, " or "), got: describe(val, true)}}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = describe(w, false)
		}
		return []problem{{ptr: ptr, want: "must be one of " + strings.Join(want, ", "), got: describe(val, false)}}
	case *kind.Const:
		return []problem{{ptr: ptr, want: "must be " + describe(k.Want, false), got: describe(val, false)}}
	case *kind.Format:
		name, ok := formatNames[k.Want]
		if !ok {
			name = "a valid " + k.Want
		}
		var detail string
		if k.Err != nil {
			detail = k.Err.Error()
		}
		return []problem{{ptr: ptr, want: "must be " + name, got: describe(val, false), detail: detail}}
	case *kind.Pattern:
		return []problem{{ptr: ptr, want: "must match " + k.Want, got: describe(val, false)}}
	case *kind.MinLength:
		if k.Want == 1 {
			return []problem{{ptr: ptr, want: "must not be empty"}}
		}
		return []problem{{ptr: ptr, want: fmt.Sprintf("must be at least %d characters long", k.Want), got: strconv.Itoa(k.Got)}}
	case *kind.MaxLength:
		return []problem{{ptr: ptr, want: fmt.Sprintf("must be at most %d characters long", k.Want), got: strconv.Itoa(k.Got)}}
	case *kind.Minimum:
		return []problem{{ptr: ptr, want: "must be at least " + k.Want.RatString(), got: describe(val, false)}}
	case *kind.Maximum:
		return []problem{{ptr: ptr, want: "must be at most " + k.Want.RatString(), got: describe(val, false)}}
	case *kind.ExclusiveMinimum:
		return []problem{{ptr: ptr, want: "must be greater than " + k.Want.RatString(), got: describe(val, false)}}
	case *kind.ExclusiveMaximum:
		return []problem{{ptr: ptr, want: "must be less than " + k.Want.RatString(), got: describe(val, false)}}
	case *kind.ContentEncoding:
		var detail string
		if k.Err != nil {
			detail = k.Err.Error()
		}
		return []problem{{ptr: ptr, want: "must be " + k.Want + " encoded", detail: detail}}
	case *kind.FalseSchema:
		return []problem{{ptr: ptr, want: "not allowed"}}
	default:
		// A keyword our schemas do not use; name it rather than import the
		// library's localisation machinery for its message.
		return []problem{{ptr: ptr, want: "fails " + strings.Join(k.KeywordPath(), "/")}}
	}
}

// pointer renders instance location tokens as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		if strings.ContainsAny(t, "~/") {
			t = strings.NewReplacer("~", "~0", "/", "~1").Replace(t)
		}
		sb.WriteString(t)
	}
	return sb.String()
}

// valueAt returns the value at the (unescaped) location tokens of doc.
func valueAt(doc any, tokens []string) (any, bool) {
	v := doc
	for _, t := range tokens {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[t]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// maxShown bounds how much of a string value a problem repeats.
const maxShown = 64

// describe renders a decoded JSON value for a message; with typed, scalars
// are prefixed by their JSON type ("number 19.99", "string \"1999\"").
func describe(v any, typed bool) string {
	var typ, s string
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		typ, s = "boolean", strconv.FormatBool(v)
	case json.Number:
		typ, s = "number", v.String()
	case float64:
		typ, s = "number", strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		if r := []rune(v); len(r) > maxShown {
			v = string(r[:maxShown]) + "…"
		}
		typ, s = "string", strconv.Quote(v)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		typ, s = fmt.Sprintf("%T", v), fmt.Sprint(v)
	}
	if typed {
		return typ + " " + s
	}
	return s
}
