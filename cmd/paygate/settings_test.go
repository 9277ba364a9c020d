package main

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// LoadConfig reads exactly the variables of settings, which `paygate
// help` lists: a variable read but not listed (or listed and never read)
// fails here.
func TestSettingsAreWhatLoadConfigReads(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	if _, err := LoadConfig(func(name string) string { read[name] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range settingList {
		want = append(want, s.name)
	}
	if d := cmp.Diff(sorted(want), sorted(keys(read))); d != "" {
		t.Errorf("variables (-settings +read by LoadConfig):\n%s", d)
	}
	help := envHelp()
	for _, s := range settingList {
		if !strings.Contains(help, "  "+s.name+" ") {
			t.Errorf("paygate help does not list %s", s.name)
		}
	}
}

// The default of each setting that LoadConfig applies itself is the one
// written in settings: setting the variable to it changes nothing.
func TestSettingsDefaultsAreLoadConfigs(t *testing.T) {
	t.Parallel()
	// Functions (clocks) cannot be compared; everything else is.
	same := cmp.Options{cmp.Exporter(func(reflect.Type) bool { return true }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type().Kind() == reflect.Func }, cmp.Ignore())}
	base, err := LoadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settingList {
		if s.def == "" || s.by != "" || strings.Contains(s.def, "$") {
			continue // none, applied by its component, or derived
		}
		got, err := LoadConfig(func(name string) string {
			if name == s.name {
				return s.def
			}
			return ""
		})
		if err != nil {
			t.Errorf("%s=%s: %v", s.name, s.def, err)
			continue
		}
		if d := cmp.Diff(base, got, same); d != "" {
			t.Errorf("%s=%s is not the default (-unset +set to it):\n%s", s.name, s.def, d)
		}
	}
}

// docs/configuration.md's table of environment variables lists every
// setting, no other, each with the default written in settings.
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
			documented[m[1]] = cols[1]
		}
	}
	var want []string
	for _, s := range settingList {
		want = append(want, s.name)
		def, ok := documented[s.name]
		if ok && s.def != "" && !strings.Contains(s.def, "$") && !strings.Contains(def, "`"+s.def+"`") {
			t.Errorf("docs/configuration.md gives %s the default %q, settings %q", s.name, def, s.def)
		}
	}
	if d := cmp.Diff(sorted(want), sorted(keys(documented))); d != "" {
		t.Errorf("variables (-settings +docs/configuration.md's table):\n%s", d)
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
