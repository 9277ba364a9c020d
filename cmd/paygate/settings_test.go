package main

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paygate/paygate/internal/settings"
)

// every is each setting Config's tags declare, as settings.List gives them.
func every(t *testing.T) []settings.Setting {
	t.Helper()
	list, err := settings.List(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// LoadConfig reads exactly the variables Config's tags declare, which
// `paygate help` lists with their defaults and help: a variable read
// some other way, and so listed nowhere, fails here.
func TestHelpListsEverySettingLoadConfigReads(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	if _, err := LoadConfig(func(name string) string { read[name] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	var want []string
	help := envHelp()
	for _, s := range every(t) {
		want = append(want, s.Name)
		line := "    " + s.Name + " "
		i := strings.Index(help, line)
		if i < 0 {
			t.Errorf("paygate help does not list %s", s.Name)
			continue
		}
		rest := strings.TrimLeft(help[i+len(line):], " ")
		if !strings.HasPrefix(rest, s.Default) || (s.Help != "" && !strings.Contains(rest, strings.SplitN(s.Help, "\n", 2)[0])) {
			t.Errorf("paygate help gives %s as %q; want its default %q and help %q", s.Name, strings.SplitN(rest, "\n", 2)[0], s.Default, s.Help)
		}
	}
	if d := cmp.Diff(sorted(want), sorted(keys(read))); d != "" {
		t.Errorf("variables (-tags +read by LoadConfig):\n%s", d)
	}
	if strings.Contains(help, "Environment: settings:") {
		t.Errorf("paygate help cannot read the tags:\n%s", help)
	}
}

// Every setting has help, or a default that says enough on its own.
func TestEverySettingSaysWhatItIs(t *testing.T) {
	t.Parallel()
	for _, s := range every(t) {
		if s.Help == "" && (s.Default == "" || s.Derived) {
			t.Errorf("%s has neither help nor a default", s.Name)
		}
	}
}

// Setting a variable to its default changes nothing: the default's text
// reads as the value Load applies when the variable is unset.
func TestSettingsDefaultsAreLoadConfigs(t *testing.T) {
	t.Parallel()
	// Functions (clocks) cannot be compared; everything else is.
	same := cmp.Options{cmp.Exporter(func(reflect.Type) bool { return true }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type().Kind() == reflect.Func }, cmp.Ignore())}
	base, err := LoadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range every(t) {
		if s.Default == "" || s.Derived {
			continue
		}
		got, err := LoadConfig(func(name string) string {
			if name == s.Name {
				return s.Default
			}
			return ""
		})
		if err != nil {
			t.Errorf("%s=%s: %v", s.Name, s.Default, err)
			continue
		}
		if d := cmp.Diff(base, got, same); d != "" {
			t.Errorf("%s=%s is not the default (-unset +set to it):\n%s", s.Name, s.Default, d)
		}
	}
}

// The defaults worked out after Load are the ones help shows: the admin
// listener dev and the ingress take, the public URL from the public
// listener, and the log format of the roles other than dev.
func TestDerivedDefaults(t *testing.T) {
	t.Parallel()
	derived := map[string]string{}
	for _, s := range every(t) {
		if s.Derived {
			derived[s.Name] = s.Default
		}
	}
	want := map[string]string{
		"PAYGATE_ADMIN_ADDR":     defaultAdminAddr,
		"PAYGATE_PUBLIC_URL":     "http://$PAYGATE_HTTP_ADDR",
		"PAYGATE_SIM_PUBLIC_URL": "http://$PAYGATE_SIM_ADDR",
		"PAYGATE_LOG_FORMAT":     roleLogFormat,
	}
	if d := cmp.Diff(want, derived); d != "" {
		t.Errorf("derived defaults (-want +tags):\n%s", d)
	}
	c, err := LoadConfig(env(map[string]string{"PAYGATE_HTTP_ADDR": "0.0.0.0:80"}))
	if err != nil || c.Payinit.PublicURL != "http://0.0.0.0:80" {
		t.Errorf("PAYGATE_PUBLIC_URL from PAYGATE_HTTP_ADDR=0.0.0.0:80: %q, %v", c.Payinit.PublicURL, err)
	}
	c, err = LoadConfig(env(map[string]string{"PAYGATE_PUBLIC_URL": "https://pay.example/", "PAYGATE_SIM_PUBLIC_URL": "https://sim.example/"}))
	if err != nil || c.Payinit.PublicURL != "https://pay.example" || c.Sim.PublicURL != "https://sim.example" {
		t.Errorf("set with a trailing /: %q, %q, %v", c.Payinit.PublicURL, c.Sim.PublicURL, err)
	}
}

// docs/configuration.md's table of environment variables lists every
// setting once, no other, each with the default its tag gives (a
// derived one is described there in words, as `http://` +
// `PAYGATE_HTTP_ADDR`, unless it is a plain value).
func TestSettingsAreDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start, end := strings.Index(doc, "## Environment variables"), strings.Index(doc, "\n## The channels file")
	if start < 0 || end < start {
		t.Fatal("docs/configuration.md has no section ## Environment variables before ## The channels file")
	}
	name := regexp.MustCompile("`((?:PAYGATE_[A-Z0-9_]+)|DATABASE_URL|KAFKA_BROKERS)`")
	documented := map[string]string{} // variable → its row's default column
	for _, line := range strings.Split(doc[start:end], "\n") {
		cols := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cols) < 3 {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cols[0], -1) {
			if _, ok := documented[m[1]]; ok {
				t.Errorf("docs/configuration.md's table has %s twice", m[1])
			}
			documented[m[1]] = cols[1]
		}
	}
	var want []string
	for _, s := range every(t) {
		want = append(want, s.Name)
		def, ok := documented[s.Name]
		if ok && s.Default != "" && !strings.Contains(s.Default, "$") && !strings.Contains(def, "`"+s.Default+"`") {
			t.Errorf("docs/configuration.md gives %s the default %q, its tag %q", s.Name, def, s.Default)
		}
	}
	if d := cmp.Diff(sorted(want), sorted(keys(documented))); d != "" {
		t.Errorf("variables (-tags +docs/configuration.md's table):\n%s", d)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
