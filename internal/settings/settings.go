// Package settings reads configuration from environment variables into
// structs, by their fields' tags, and lists what it reads: one source for
// each setting's variable, default and help, written beside the field it
// sets. paygate's components carry the tags on their own Config structs;
// internal/app composes them; cmd/paygate loads the composition once and
// prints `paygate help` from List.
//
// A field is a setting when it has an env tag:
//
//	Interval time.Duration `env:"PAYGATE_SWEEP_INTERVAL" default:"1s" min:"1ns" help:"time between rounds"`
//
// The tags:
//
//	env      the variable (required; a field without it is no setting).
//	default  the value taken when the variable is unset or empty, written
//	         as the variable would be. Without it the field is left as it is.
//	derived  instead of default: the default as people read it (shown by
//	         List), which code works out after Load, from other settings or
//	         the process's role ("http://$PAYGATE_HTTP_ADDR"); Load leaves
//	         the field as it is.
//	help     one line on what it is, for `paygate help`.
//	min      the smallest value accepted, written as the variable would be:
//	         for integers, floats and durations, and each entry of a list
//	         of them.
//	secret   "true": the value is never printed; an error names the
//	         variable only.
//	negate   "true", on a bool: the field holds the variable's negation,
//	         so that its zero value can stand for a variable that defaults
//	         to true (payinit.Config.SkipEarlierCheck is
//	         PAYGATE_CHECK_EARLIER_ATTEMPTS negated).
//
// Any other tag key on a setting, or one of these on a field without env,
// is an error: a misspelt tag would otherwise lose its default silently.
//
// The types: string; bool (true or 1, false or 0); the integer and
// floating-point kinds; time.Duration (time.ParseDuration); a slice of
// any of these, written comma-separated (entries trimmed, empty ones
// dropped); and any type whose pointer implements encoding.TextUnmarshaler,
// which is the hook for values of their own syntax (ingress.Keys for
// PAYGATE_MALL_KEYS, console.Users for PAYGATE_CONSOLE_USERS). Named types
// of these kinds work alike.
//
// Struct fields without env are walked, so that a composed Config is
// loaded whole (embedded ones too); unexported fields, pointers, maps,
// functions and interfaces without env are left alone. One variable may be the tag of
// several fields, when two components read it (PAYGATE_PSP_CONCURRENCY:
// payinit and callbacks): each field carries the tag, so that each
// component's own test can hold its New to it, and every tag but help
// must be the same on all of them (help may be written on one only).
package settings

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting is one variable, as List reports it.
type Setting struct {
	// Name is the variable.
	Name string
	// Default is the default tag's text, or the derived tag's ("" for
	// none).
	Default string
	// Derived says Default is worked out by code after Load, not applied
	// by it.
	Derived bool
	// Help is the help tag's text.
	Help string
	// Secret says the value is never printed.
	Secret bool
	// Components are the import paths of the packages whose structs
	// declare the fields it sets, in the order they were walked.
	Components []string
	// Fields are those fields, as paths from the walked struct
	// ("Sweeper.Interval").
	Fields []string
}

// Error is a variable whose value cannot be read.
type Error struct {
	// Name is the variable, Value what it was set to ("" when Secret).
	Name, Value string
	// Secret says Value is withheld.
	Secret bool
	// Err says what was wanted.
	Err error
}

func (e *Error) Error() string {
	if e.Secret {
		return fmt.Sprintf("%s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("%s=%q: %v", e.Name, e.Value, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load sets each setting field of the struct dst points to from getenv:
// to the variable's value, or when that is empty to the default tag's; a
// field without either is left as it is. It returns an error for a tag it
// cannot follow (naming the field), or else every variable whose value it
// cannot read, each an *Error, joined.
func Load(dst any, getenv func(string) string) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("settings: Load needs a pointer to a struct, not %T", dst)
	}
	fields, err := walk(v.Elem().Type())
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range fields {
		text := getenv(f.name)
		if text == "" {
			if f.def == "" || f.derived {
				continue
			}
			text = f.def // checked by walk: it parses
		}
		x, err := f.parse(text)
		if err != nil {
			e := &Error{Name: f.name, Secret: f.secret, Err: err}
			if !f.secret {
				e.Value = text
			}
			errs = append(errs, e)
			continue
		}
		v.Elem().FieldByIndex(f.index).Set(x)
	}
	return errors.Join(errs...)
}

// List returns every variable the struct v (or the struct it points to)
// reads, once each, in the order of its fields. It checks the tags as
// Load does.
func List(v any) ([]Setting, error) {
	t := reflect.TypeOf(v)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("settings: List needs a struct or a pointer to one, not %T", v)
	}
	fields, err := walk(t)
	if err != nil {
		return nil, err
	}
	var out []Setting
	at := map[string]int{}
	for _, f := range fields {
		i, ok := at[f.name]
		if !ok {
			i = len(out)
			at[f.name] = i
			out = append(out, Setting{Name: f.name, Default: f.def, Derived: f.derived, Secret: f.secret})
		}
		s := &out[i]
		if s.Help == "" {
			s.Help = f.help
		}
		if !slices.Contains(s.Components, f.owner) {
			s.Components = append(s.Components, f.owner)
		}
		s.Fields = append(s.Fields, f.path)
	}
	return out, nil
}

// CheckDefaults holds what a component's own code fills in to the tags:
// filled is a component's Config after its New (or its defaults method)
// filled the zero fields, and every setting field holding a value other
// than its zero must hold the default its tag says. A field left zero is
// one the code does not fill in, which is not checked. It returns one
// error per field that differs, joined, or an error when no field held a
// value at all (nothing was compared: not a filled Config).
func CheckDefaults(filled any) error {
	v := reflect.ValueOf(filled)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("settings: CheckDefaults needs a struct or a pointer to one, not %T", filled)
	}
	fields, err := walk(v.Type())
	if err != nil {
		return err
	}
	var errs []error
	compared := 0
	for _, f := range fields {
		got := v.FieldByIndex(f.index)
		if got.IsZero() {
			continue
		}
		compared++
		if f.def == "" || f.derived {
			errs = append(errs, fmt.Errorf("%s (%s): the code fills in %v, the tag gives no default", f.path, f.name, got))
			continue
		}
		want, err := f.parse(f.def)
		if err != nil {
			return err // walk parsed it already
		}
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			errs = append(errs, fmt.Errorf("%s (%s): the code fills in %v, the tag says %s", f.path, f.name, got, f.def))
		}
	}
	if compared == 0 {
		return fmt.Errorf("settings: no setting of %s holds a value: pass the Config its code filled in", v.Type())
	}
	return errors.Join(errs...)
}

// field is one setting field, found by walk.
type field struct {
	index   []int  // for reflect.Value.FieldByIndex
	path    string // "Sweeper.Interval"
	owner   string // the import path of the struct declaring it
	typ     reflect.Type
	name    string
	def     string
	derived bool
	help    string
	min     string
	secret  bool
	negate  bool
	// minV is min parsed, for the numeric kinds.
	minV reflect.Value
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

var knownTags = []string{"env", "default", "derived", "help", "min", "secret", "negate"}

// walk finds the setting fields of struct type t and its struct fields,
// and checks their tags.
func walk(t reflect.Type) ([]*field, error) {
	var out []*field
	if err := walkInto(t, nil, "", &out); err != nil {
		return nil, err
	}
	byName := map[string]*field{}
	for _, f := range out {
		first, ok := byName[f.name]
		if !ok {
			byName[f.name] = f
			continue
		}
		if err := same(first, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func walkInto(t reflect.Type, index []int, prefix string, out *[]*field) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(slices.Clip(index), i)
		path := prefix + sf.Name
		keys, err := tagKeys(sf.Tag)
		if err != nil {
			return fmt.Errorf("settings: field %s of %s: %w", path, t, err)
		}
		_, isSetting := sf.Tag.Lookup("env")
		if !isSetting {
			for _, k := range keys {
				if slices.Contains(knownTags, k) {
					return fmt.Errorf("settings: field %s of %s: tag %s without env", path, t, k)
				}
			}
			if (sf.IsExported() || sf.Anonymous) && sf.Type.Kind() == reflect.Struct && !reflect.PointerTo(sf.Type).Implements(textUnmarshaler) {
				if err := walkInto(sf.Type, idx, path+".", out); err != nil {
					return err
				}
			}
			continue
		}
		if !sf.IsExported() {
			return fmt.Errorf("settings: field %s of %s: unexported, it cannot be set", path, t)
		}
		for _, k := range keys {
			if !slices.Contains(knownTags, k) {
				return fmt.Errorf("settings: field %s of %s: unknown tag %q (known: %s)", path, t, k, strings.Join(knownTags, ", "))
			}
		}
		f, err := newField(sf, idx, path, t)
		if err != nil {
			return fmt.Errorf("settings: field %s of %s: %w", path, t, err)
		}
		*out = append(*out, f)
	}
	return nil
}

func newField(sf reflect.StructField, index []int, path string, owner reflect.Type) (*field, error) {
	f := &field{index: index, path: path, owner: owner.PkgPath(), typ: sf.Type, name: sf.Tag.Get("env"),
		help: sf.Tag.Get("help"), min: sf.Tag.Get("min")}
	if f.name == "" {
		return nil, errors.New("empty env tag")
	}
	def, hasDef := sf.Tag.Lookup("default")
	der, hasDer := sf.Tag.Lookup("derived")
	switch {
	case hasDef && hasDer:
		return nil, errors.New("both default and derived: a default is either applied by Load or worked out by code")
	case hasDer:
		f.def, f.derived = der, true
	default:
		f.def = def
	}
	var err error
	if f.secret, err = flag(sf.Tag, "secret"); err != nil {
		return nil, err
	}
	if f.negate, err = flag(sf.Tag, "negate"); err != nil {
		return nil, err
	}
	if f.negate && (sf.Type.Kind() != reflect.Bool || implementsText(sf.Type)) {
		return nil, fmt.Errorf("negate on a %s: it is for bool fields", sf.Type)
	}
	if !implementsText(sf.Type) {
		if _, err := scalar(sf.Type); err != nil {
			return nil, err
		}
	}
	if f.min != "" {
		elem := sf.Type
		if elem.Kind() == reflect.Slice && !implementsText(elem) {
			elem = elem.Elem()
		}
		if implementsText(elem) || !numeric(elem.Kind()) {
			return nil, fmt.Errorf("min on a %s: it is for numbers and durations", sf.Type)
		}
		if f.minV, err = parseScalar(elem, f.min); err != nil {
			return nil, fmt.Errorf("min %q: %w", f.min, err)
		}
	}
	if f.def != "" && !f.derived {
		if _, err := f.parse(f.def); err != nil {
			return nil, fmt.Errorf("default %q: %w", f.def, err)
		}
	}
	return f, nil
}

// same checks that two fields of one variable read it alike.
func same(a, b *field) error {
	var diff string
	switch {
	case a.typ != b.typ:
		diff = fmt.Sprintf("type %s and %s", a.typ, b.typ)
	case a.def != b.def || a.derived != b.derived:
		diff = fmt.Sprintf("default %q and %q", a.def, b.def)
	case a.min != b.min:
		diff = fmt.Sprintf("min %q and %q", a.min, b.min)
	case a.secret != b.secret:
		diff = "secret on one only"
	case a.negate != b.negate:
		diff = "negate on one only"
	case a.help != "" && b.help != "" && a.help != b.help:
		diff = "two helps (write it on one)"
	default:
		return nil
	}
	return fmt.Errorf("settings: %s is the tag of %s and %s, with %s", a.name, a.path, b.path, diff)
}

func flag(tag reflect.StructTag, key string) (bool, error) {
	switch v, ok := tag.Lookup(key); {
	case !ok:
		return false, nil
	case v == "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s:%q: true or no tag", key, v)
	}
}

// tagKeys lists the keys of a struct tag written as reflect.StructTag
// expects (key:"value" pairs separated by spaces).
func tagKeys(tag reflect.StructTag) ([]string, error) {
	var keys []string
	s := string(tag)
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return keys, nil
		}
		i := 0
		for i < len(s) && s[i] > ' ' && s[i] != ':' && s[i] != '"' && s[i] != 0x7f {
			i++
		}
		if i == 0 || i+1 >= len(s) || s[i] != ':' || s[i+1] != '"' {
			return nil, fmt.Errorf("malformed tag %q", string(tag))
		}
		key := s[:i]
		s = s[i+1:]
		i = 1
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(s) {
			return nil, fmt.Errorf("malformed tag %q", string(tag))
		}
		if _, err := strconv.Unquote(s[:i+1]); err != nil {
			return nil, fmt.Errorf("malformed tag %q", string(tag))
		}
		keys = append(keys, key)
		s = s[i+1:]
	}
}

func implementsText(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textUnmarshaler) }

func numeric(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// scalar checks that t is a type Load reads: a scalar kind, or a slice of
// one (or of a TextUnmarshaler). It returns the element type of a slice,
// t itself otherwise.
func scalar(t reflect.Type) (reflect.Type, error) {
	elem := t
	if t.Kind() == reflect.Slice {
		elem = t.Elem()
		if implementsText(elem) {
			return elem, nil
		}
	}
	switch elem.Kind() {
	case reflect.String, reflect.Bool:
		return elem, nil
	}
	if numeric(elem.Kind()) {
		return elem, nil
	}
	return nil, fmt.Errorf("type %s: not one settings reads (string, bool, a number, time.Duration, a slice of them, or an encoding.TextUnmarshaler)", t)
}

// parse reads text into a new value of the field's type.
func (f *field) parse(text string) (reflect.Value, error) {
	t := f.typ
	if implementsText(t) {
		p := reflect.New(t)
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
			return reflect.Value{}, err
		}
		return p.Elem(), nil
	}
	if t.Kind() == reflect.Slice {
		out := reflect.Zero(t)
		for _, s := range strings.Split(text, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			x, err := f.parseOne(t.Elem(), s)
			if err != nil {
				return reflect.Value{}, fmt.Errorf("entry %q: %w", s, err)
			}
			out = reflect.Append(out, x)
		}
		return out, nil
	}
	x, err := f.parseOne(t, text)
	if err != nil {
		return reflect.Value{}, err
	}
	if f.negate {
		x.SetBool(!x.Bool())
	}
	return x, nil
}

// parseOne reads one scalar (or list entry) and holds it to min.
func (f *field) parseOne(t reflect.Type, text string) (reflect.Value, error) {
	if implementsText(t) {
		p := reflect.New(t)
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
			return reflect.Value{}, err
		}
		return p.Elem(), nil
	}
	x, err := parseScalar(t, text)
	if err != nil || !f.minV.IsValid() {
		if err != nil {
			err = errors.New(f.want(t))
		}
		return x, err
	}
	if less(x, f.minV) {
		return reflect.Value{}, errors.New(f.want(t))
	}
	return x, nil
}

func parseScalar(t reflect.Type, text string) (reflect.Value, error) {
	x := reflect.New(t).Elem()
	switch k := t.Kind(); {
	case t == durationType:
		d, err := time.ParseDuration(text)
		if err != nil {
			return x, err
		}
		x.SetInt(int64(d))
	case k == reflect.String:
		x.SetString(text)
	case k == reflect.Bool:
		switch text {
		case "true", "1":
			x.SetBool(true)
		case "false", "0":
		default:
			return x, errors.New("true or false")
		}
	case k >= reflect.Int && k <= reflect.Int64:
		n, err := strconv.ParseInt(text, 10, t.Bits())
		if err != nil {
			return x, err
		}
		x.SetInt(n)
	case k >= reflect.Uint && k <= reflect.Uint64:
		n, err := strconv.ParseUint(text, 10, t.Bits())
		if err != nil {
			return x, err
		}
		x.SetUint(n)
	case k == reflect.Float32 || k == reflect.Float64:
		n, err := strconv.ParseFloat(text, t.Bits())
		if err != nil {
			return x, err
		}
		x.SetFloat(n)
	default:
		return x, fmt.Errorf("type %s: not one settings reads", t)
	}
	return x, nil
}

func less(a, b reflect.Value) bool {
	switch k := a.Kind(); {
	case k >= reflect.Int && k <= reflect.Int64:
		return a.Int() < b.Int()
	case k >= reflect.Uint && k <= reflect.Uint64:
		return a.Uint() < b.Uint()
	default:
		return a.Float() < b.Float()
	}
}

// want says what a value of type t must be, for an error.
func (f *field) want(t reflect.Type) string {
	if t == durationType {
		switch {
		case f.min == "":
			return "a duration like 30s or -10m"
		case f.minV.Int() == 1:
			return "a positive duration like 30s"
		case f.minV.Int() == 0:
			return "a duration of 0 or more, like 80ms"
		default:
			return fmt.Sprintf("a duration of %s or more", f.min)
		}
	}
	switch k := t.Kind(); {
	case k == reflect.Bool:
		return "true or false"
	case k == reflect.Float32 || k == reflect.Float64:
		if f.min == "" {
			return "a number"
		}
		return fmt.Sprintf("a number of %s or more", f.min)
	case numeric(k):
		switch f.min {
		case "":
			return "an integer"
		case "1":
			return "a positive integer"
		default:
			return fmt.Sprintf("an integer of %s or more", f.min)
		}
	}
	return "a " + t.String()
}
