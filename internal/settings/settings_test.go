package settings_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paygate/paygate/internal/settings"
)

// pair is a type of its own syntax, "id:secret", read through
// encoding.TextUnmarshaler.
type pair struct{ ID, Secret string }

func (p *pair) UnmarshalText(b []byte) error {
	id, secret, ok := strings.Cut(string(b), ":")
	if !ok || id == "" || secret == "" {
		return errors.New("not id:secret")
	}
	*p = pair{id, secret}
	return nil
}

// hosts is a named slice, as domain.HostAllowList is.
type hosts []string

// level is a named string.
type level string

// Inner is walked as a struct field without env; embedded is walked as an
// embedded one.
type Inner struct {
	Interval time.Duration `env:"T_INTERVAL" default:"1s" min:"1ns" help:"time between rounds"`
	Untagged int
}

type embedded struct {
	Flag bool `env:"T_FLAG" default:"false"`
}

type all struct {
	embedded
	Name     string          `env:"T_NAME" default:"paygate"`
	Count    int             `env:"T_COUNT" default:"8" min:"1"`
	Small    int8            `env:"T_SMALL"`
	Big      uint64          `env:"T_BIG"`
	Rate     float64         `env:"T_RATE" min:"0"`
	Wait     time.Duration   `env:"T_WAIT" min:"0s"`
	Offset   time.Duration   `env:"T_OFFSET"`
	TTL      time.Duration   `env:"T_TTL" min:"1m"`
	Check    bool            `env:"T_CHECK" default:"true"`
	Skip     bool            `env:"T_CHECK_EARLIER" default:"true" negate:"true"`
	List     []string        `env:"T_LIST" default:"a, b,,c"`
	Hosts    hosts           `env:"T_HOSTS"`
	Schedule []time.Duration `env:"T_SCHEDULE" default:"1m,5m" min:"1ns"`
	Ports    []int           `env:"T_PORTS"`
	Key      pair            `env:"T_KEY" secret:"true"`
	Pairs    []pair          `env:"T_PAIRS"`
	Level    level           `env:"T_LEVEL" default:"info"`
	Public   string          `env:"T_PUBLIC" derived:"http://$T_NAME"`
	Inner    Inner
	Ptr      *Inner
	Func     func()
	Map      map[string]int
	//lint:ignore U1000 there to be walked past: an unexported field is no setting
	private Inner
	NoEnv   string
}

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// Unset variables take their defaults; a variable set takes its value, in
// every type; fields without a variable or a default stay as they were.
func TestLoad(t *testing.T) {
	t.Parallel()
	var got all
	got.NoEnv, got.Public, got.Small = "kept", "kept too", 3
	if err := settings.Load(&got, env(nil)); err != nil {
		t.Fatal(err)
	}
	want := all{Name: "paygate", Count: 8, Small: 3, Check: true, List: []string{"a", "b", "c"},
		Schedule: []time.Duration{time.Minute, 5 * time.Minute}, Level: "info", Public: "kept too",
		Inner: Inner{Interval: time.Second}, NoEnv: "kept"}
	opts := cmp.Options{cmp.AllowUnexported(all{}), cmp.Comparer(func(a, b func()) bool { return a == nil && b == nil })}
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}

	got = all{}
	err := settings.Load(&got, env(map[string]string{
		"T_FLAG": "1", "T_NAME": "x", "T_COUNT": "3", "T_SMALL": "-7", "T_BIG": "18446744073709551615", "T_RATE": "0.25",
		"T_WAIT": "0s", "T_OFFSET": "-10m", "T_TTL": "2h", "T_CHECK": "0", "T_CHECK_EARLIER": "false",
		"T_LIST": "only", "T_HOSTS": " .shop.example , localhost ", "T_SCHEDULE": "10s", "T_PORTS": "80,443",
		"T_KEY": "id:s3cret", "T_PAIRS": "a:1,b:2", "T_LEVEL": "debug", "T_PUBLIC": "https://pay.example", "T_INTERVAL": "250ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want = all{embedded: embedded{Flag: true}, Name: "x", Count: 3, Small: -7, Big: 1<<64 - 1, Rate: 0.25, Offset: -10 * time.Minute,
		TTL: 2 * time.Hour, Skip: true, List: []string{"only"}, Hosts: hosts{".shop.example", "localhost"},
		Schedule: []time.Duration{10 * time.Second}, Ports: []int{80, 443}, Key: pair{"id", "s3cret"},
		Pairs: []pair{{"a", "1"}, {"b", "2"}}, Level: "debug", Public: "https://pay.example", Inner: Inner{Interval: 250 * time.Millisecond}}
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("set (-want +got):\n%s", d)
	}
}

// A list of nothing but commas is set, and empty: the default is for an
// unset variable only.
func TestLoadEmptyList(t *testing.T) {
	t.Parallel()
	var got all
	if err := settings.Load(&got, env(map[string]string{"T_LIST": " , ,", "T_SCHEDULE": ","})); err != nil {
		t.Fatal(err)
	}
	if got.List != nil || got.Schedule != nil {
		t.Errorf("list %q, schedule %v; want both empty", got.List, got.Schedule)
	}
}

// A negated bool holds the variable's negation: its zero value is the
// variable's default, true.
func TestLoadNegate(t *testing.T) {
	t.Parallel()
	for v, skip := range map[string]bool{"": false, "true": false, "1": false, "false": true, "0": true} {
		var got all
		if err := settings.Load(&got, env(map[string]string{"T_CHECK_EARLIER": v})); err != nil || got.Skip != skip {
			t.Errorf("T_CHECK_EARLIER=%q: skip %v, %v; want %v", v, got.Skip, err, skip)
		}
	}
}

// A bad value is an error naming the variable, its value and what was
// wanted; a secret's value is left out; every bad variable is reported.
func TestLoadBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"T_FLAG", "yes", `T_FLAG="yes": true or false`},
		{"T_FLAG", "TRUE", `T_FLAG="TRUE": true or false`},
		{"T_CHECK_EARLIER", "no", `T_CHECK_EARLIER="no": true or false`},
		{"T_COUNT", "many", `T_COUNT="many": a positive integer`},
		{"T_COUNT", "0", `T_COUNT="0": a positive integer`},
		{"T_COUNT", "-1", `T_COUNT="-1": a positive integer`},
		{"T_COUNT", "1.5", `T_COUNT="1.5": a positive integer`},
		{"T_SMALL", "128", `T_SMALL="128": an integer`},
		{"T_BIG", "-1", `T_BIG="-1": an integer`},
		{"T_RATE", "-0.1", `T_RATE="-0.1": a number of 0 or more`},
		{"T_RATE", "half", `T_RATE="half": a number of 0 or more`},
		{"T_WAIT", "-1s", `T_WAIT="-1s": a duration of 0 or more, like 80ms`},
		{"T_WAIT", "soon", `T_WAIT="soon": a duration of 0 or more, like 80ms`},
		{"T_OFFSET", "10", `T_OFFSET="10": a duration like 30s or -10m`},
		{"T_TTL", "59s", `T_TTL="59s": a duration of 1m or more`},
		{"T_INTERVAL", "0s", `T_INTERVAL="0s": a positive duration like 30s`},
		{"T_SCHEDULE", "1m,0s", `T_SCHEDULE="1m,0s": entry "0s": a positive duration like 30s`},
		{"T_SCHEDULE", "1m,x", `T_SCHEDULE="1m,x": entry "x": a positive duration like 30s`},
		{"T_PORTS", "80,http", `T_PORTS="80,http": entry "http": an integer`},
		{"T_PAIRS", "a:1,b", `T_PAIRS="a:1,b": entry "b": not id:secret`},
		{"T_KEY", "s3cret", `T_KEY: not id:secret`},
	} {
		var got all
		err := settings.Load(&got, env(map[string]string{tc.name: tc.value}))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s=%q: %v; want %s", tc.name, tc.value, err, tc.want)
		}
		var e *settings.Error
		if !errors.As(err, &e) || e.Name != tc.name {
			t.Errorf("%s=%q: %#v is not a *settings.Error naming it", tc.name, tc.value, err)
		}
	}
	var got all
	err := settings.Load(&got, env(map[string]string{"T_COUNT": "0", "T_TTL": "1s", "T_KEY": "x"}))
	for _, name := range []string{"T_COUNT", "T_TTL", "T_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("several bad variables: %v does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), `"x"`) {
		t.Errorf("a secret's value is printed: %v", err)
	}
}

// Minimums of every numeric kind, and the message for one other than 1.
func TestLoadMinimums(t *testing.T) {
	t.Parallel()
	type mins struct {
		Port  uint16  `env:"T_PORT" min:"1024"`
		Days  int     `env:"T_DAYS" min:"0"`
		Share float32 `env:"T_SHARE" min:"0.5"`
	}
	var got mins
	if err := settings.Load(&got, env(map[string]string{"T_PORT": "1024", "T_DAYS": "0", "T_SHARE": "0.5"})); err != nil || got != (mins{1024, 0, 0.5}) {
		t.Errorf("at the minimums: %+v, %v", got, err)
	}
	for name, tc := range map[string]struct{ value, want string }{
		"T_PORT":  {"80", `T_PORT="80": an integer of 1024 or more`},
		"T_DAYS":  {"-1", `T_DAYS="-1": an integer of 0 or more`},
		"T_SHARE": {"0.25", `T_SHARE="0.25": a number of 0.5 or more`},
	} {
		err := settings.Load(&got, env(map[string]string{name: tc.value}))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s=%s: %v; want %s", name, tc.value, err, tc.want)
		}
		var e *settings.Error
		if !errors.As(err, &e) || errors.Unwrap(e) == nil {
			t.Errorf("%s=%s: %v does not wrap what was wanted", name, tc.value, err)
		}
	}
}

// Load needs a pointer to a struct.
func TestLoadNeedsAPointerToAStruct(t *testing.T) {
	t.Parallel()
	var n int
	for _, dst := range []any{all{}, &n, nil, (*all)(nil)} {
		if err := settings.Load(dst, env(nil)); err == nil {
			t.Errorf("Load(%T) = nil", dst)
		}
	}
	if _, err := settings.List(3); err == nil {
		t.Error("List(3) = nil")
	}
}

// malformed is a struct whose one field has the tag given, which go vet
// would refuse in a struct type written out.
func malformed(tag string) any {
	t := reflect.StructOf([]reflect.StructField{{Name: "A", Type: reflect.TypeFor[int](), Tag: reflect.StructTag(tag)}})
	return reflect.New(t).Interface()
}

// Tags that cannot be followed are errors naming the field, from Load and
// List alike: a misspelt tag would otherwise lose its default silently.
func TestBadTags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"unknown tag", &struct {
			A int `env:"A" defualt:"1"`
		}{}, `unknown tag "defualt"`},
		{"foreign tag", &struct {
			A int `env:"A" json:"a"`
		}{}, `unknown tag "json"`},
		{"default without env", &struct {
			A int `default:"1"`
		}{}, "tag default without env"},
		{"misspelt env", &struct {
			A int `evn:"A" help:"a"`
		}{}, "tag help without env"},
		{"empty env", &struct {
			A int `env:""`
		}{}, "empty env tag"},
		{"default and derived", &struct {
			A string `env:"A" default:"x" derived:"y"`
		}{}, "both default and derived"},
		{"bad default", &struct {
			A time.Duration `env:"A" default:"1 second"`
		}{}, `default "1 second"`},
		{"default below min", &struct {
			A int `env:"A" default:"0" min:"1"`
		}{}, `default "0": a positive integer`},
		{"negate on an int", &struct {
			A int `env:"A" negate:"true"`
		}{}, "negate on a int"},
		{"negate not true", &struct {
			A bool `env:"A" negate:"yes"`
		}{}, `negate:"yes"`},
		{"secret not true", &struct {
			A string `env:"A" secret:"1"`
		}{}, `secret:"1"`},
		{"min on a string", &struct {
			A string `env:"A" min:"a"`
		}{}, "min on a string"},
		{"min on a text type", &struct {
			A pair `env:"A" min:"a"`
		}{}, "min on a settings_test.pair"},
		{"bad min", &struct {
			A int `env:"A" min:"one"`
		}{}, `min "one"`},
		{"a map", &struct {
			A map[string]string `env:"A"`
		}{}, "type map[string]string: not one settings reads"},
		{"a struct", &struct {
			A Inner `env:"A"`
		}{}, "type settings_test.Inner: not one settings reads"},
		{"a pointer", &struct {
			A *int `env:"A"`
		}{}, "type *int: not one settings reads"},
		{"a list of lists", &struct {
			A [][]string `env:"A"`
		}{}, "type [][]string: not one settings reads"},
		{"unexported", &struct {
			a int `env:"A"`
		}{}, "unexported"},
		{"malformed", malformed(`env:"A" default:1`), "malformed tag"},
		{"malformed, unquoted", malformed(`env:"A" default`), "malformed tag"},
		{"malformed, unterminated", malformed(`env:"A" default:"1`), "malformed tag"},
		{"malformed, bad escape", malformed(`env:"A" default:"\x"`), "malformed tag"},
		{"nested", &struct {
			In struct {
				A int `env:"A" min:"x"`
			}
		}{}, "field In.A"},
		{"shared, two defaults", &struct {
			A int `env:"A" default:"1"`
			B int `env:"A" default:"2"`
		}{}, `A is the tag of A and B, with default "1" and "2"`},
		{"shared, a default on one", &struct {
			A int `env:"A" default:"1"`
			B int `env:"A"`
		}{}, `default "1" and ""`},
		{"shared, two types", &struct {
			A int   `env:"A"`
			B int64 `env:"A"`
		}{}, "type int and int64"},
		{"shared, two mins", &struct {
			A int `env:"A" min:"1"`
			B int `env:"A"`
		}{}, `min "1" and ""`},
		{"shared, secret on one", &struct {
			A string `env:"A" secret:"true"`
			B string `env:"A"`
		}{}, "secret on one only"},
		{"shared, negate on one", &struct {
			A bool `env:"A" negate:"true"`
			B bool `env:"A"`
		}{}, "negate on one only"},
		{"shared, two helps", &struct {
			A int `env:"A" help:"one"`
			B int `env:"A" help:"two"`
		}{}, "two helps"},
	} {
		errLoad := settings.Load(tc.v, env(nil))
		_, errList := settings.List(tc.v)
		for what, err := range map[string]error{"Load": errLoad, "List": errList} {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %s = %v; want an error with %q", tc.name, what, err, tc.want)
			}
		}
	}
}

// One variable read by two components: both fields are set, and List
// gives it once, with its help and both fields.
func TestShared(t *testing.T) {
	t.Parallel()
	type payinit struct {
		Concurrency int `env:"T_CONCURRENCY" default:"128" min:"1" help:"PSP calls at once"`
	}
	type callbacks struct {
		Concurrency int `env:"T_CONCURRENCY" default:"128" min:"1"`
	}
	var got struct {
		Payinit   payinit
		Callbacks callbacks
	}
	if err := settings.Load(&got, env(map[string]string{"T_CONCURRENCY": "32"})); err != nil {
		t.Fatal(err)
	}
	if got.Payinit.Concurrency != 32 || got.Callbacks.Concurrency != 32 {
		t.Errorf("set: %+v", got)
	}
	list, err := settings.List(got)
	if err != nil {
		t.Fatal(err)
	}
	want := []settings.Setting{{Name: "T_CONCURRENCY", Default: "128", Help: "PSP calls at once",
		Components: []string{"github.com/paygate/paygate/internal/settings_test"}, Fields: []string{"Payinit.Concurrency", "Callbacks.Concurrency"}}}
	if d := cmp.Diff(want, list); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
}

// List gives every variable in the order of the fields, nested ones
// where they are, with what their tags say.
func TestList(t *testing.T) {
	t.Parallel()
	list, err := settings.List(&all{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		line := fmt.Sprintf("%s %s=%q", strings.Join(s.Fields, ","), s.Name, s.Default)
		if s.Derived {
			line += " derived"
		}
		if s.Secret {
			line += " secret"
		}
		if s.Help != "" {
			line += " (" + s.Help + ")"
		}
		if len(s.Components) != 1 || s.Components[0] != "github.com/paygate/paygate/internal/settings_test" {
			t.Errorf("%s: components %q", s.Name, s.Components)
		}
		got = append(got, line)
	}
	want := []string{
		`embedded.Flag T_FLAG="false"`,
		`Name T_NAME="paygate"`,
		`Count T_COUNT="8"`,
		`Small T_SMALL=""`,
		`Big T_BIG=""`,
		`Rate T_RATE=""`,
		`Wait T_WAIT=""`,
		`Offset T_OFFSET=""`,
		`TTL T_TTL=""`,
		`Check T_CHECK="true"`,
		`Skip T_CHECK_EARLIER="true"`,
		`List T_LIST="a, b,,c"`,
		`Hosts T_HOSTS=""`,
		`Schedule T_SCHEDULE="1m,5m"`,
		`Ports T_PORTS=""`,
		`Key T_KEY="" secret`,
		`Pairs T_PAIRS=""`,
		`Level T_LEVEL="info"`,
		`Public T_PUBLIC="http://$T_NAME" derived`,
		`Inner.Interval T_INTERVAL="1s" (time between rounds)`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
}

// CheckDefaults holds what a component's code fills in to its tags.
func TestCheckDefaults(t *testing.T) {
	t.Parallel()
	type config struct {
		Interval time.Duration   `env:"T_INTERVAL" default:"1s"`
		Schedule []time.Duration `env:"T_SCHEDULE" default:"1m,5m"`
		Skip     bool            `env:"T_CHECK" default:"true" negate:"true"`
		DataDir  string          `env:"T_DATA_DIR" default:"./data"` // the code leaves it: in memory
		Public   string          `env:"T_PUBLIC" derived:"http://$T_ADDR"`
		None     int             `env:"T_NONE"`
		Batch    int             // no setting: not compared
	}
	filled := config{Interval: time.Second, Schedule: []time.Duration{time.Minute, 5 * time.Minute}, Batch: 500}
	if err := settings.CheckDefaults(filled); err != nil {
		t.Errorf("agreeing: %v", err)
	}
	if err := settings.CheckDefaults(&filled); err != nil {
		t.Errorf("agreeing, by pointer: %v", err)
	}
	for _, tc := range []struct {
		filled config
		want   []string
	}{
		{config{Interval: 2 * time.Second}, []string{"Interval (T_INTERVAL): the code fills in 2s, the tag says 1s"}},
		{config{Interval: time.Second, Schedule: []time.Duration{time.Minute}}, []string{"Schedule (T_SCHEDULE): the code fills in [1m0s], the tag says 1m,5m"}},
		{config{Interval: time.Second, None: 3, Public: "x"}, []string{
			"Public (T_PUBLIC): the code fills in x, the tag gives no default", "None (T_NONE): the code fills in 3, the tag gives no default"}},
		{config{Batch: 500}, []string{"no setting of settings_test.config holds a value"}},
	} {
		err := settings.CheckDefaults(tc.filled)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v; want %q", tc.filled, err, w)
			}
		}
	}
	if err := settings.CheckDefaults(3); err == nil {
		t.Error("CheckDefaults(3) = nil")
	}
	if err := settings.CheckDefaults(struct {
		A int `env:"A" bad:"x"`
	}{A: 1}); err == nil || !strings.Contains(err.Error(), "unknown tag") {
		t.Errorf("bad tags: %v", err)
	}
}
