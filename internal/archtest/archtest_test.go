package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/paygate/paygate/"

// pkg is one directory's imports, of its code and of its tests apart.
type pkg struct {
	code, tests map[string]bool // import path (ours without the module prefix)
}

// rule is one allowed direction of the map, said as what may not be:
// applies picks the importing packages, forbids the imports they may not
// have, and why is what the map says instead.
type rule struct {
	name    string
	applies func(dir string) bool
	forbids func(dir, imp string) bool
	tests   bool // the package's test files too
	why     string
}

var rules = []rule{
	{
		name:    "domain is pure",
		applies: func(d string) bool { return d == "domain" || strings.HasPrefix(d, "domain/") },
		forbids: func(_, imp string) bool { return !stdlib(imp) && imp != "domain" && !strings.HasPrefix(imp, "domain/") },
		why:     "domain (and its sub-packages, such as domain/routing) imports the standard library and itself only: rules, no wiring",
	},
	{
		name:    "schemas is the leaf of the wire",
		applies: func(d string) bool { return d == "schemas" },
		forbids: func(_, imp string) bool { return ours(imp) },
		why:     "schemas holds message types and their JSON Schemas and imports nothing of ours; wire translates them to and from domain values",
	},
	{
		name:    "one owner of the wire encoding",
		applies: func(d string) bool { return d == "internal/wire" },
		forbids: func(_, imp string) bool {
			return ours(imp) && imp != "domain" && !strings.HasPrefix(imp, "domain/") && imp != "schemas"
		},
		why: "wire translates between domain values (domain and its sub-packages) and schemas' messages, and needs nothing else",
	},
	{
		name:    "one retry policy, depending on nothing",
		applies: func(d string) bool { return d == "internal/backoff" },
		forbids: func(_, imp string) bool { return !stdlib(imp) },
		why:     "internal/backoff is the retry policy everything uses; it imports the standard library only",
	},
	{
		name:    "settings depend on nothing",
		applies: func(d string) bool { return d == "internal/settings" },
		forbids: func(_, imp string) bool { return !stdlib(imp) },
		why:     "internal/settings reads the tags every component's Config carries, and any package may import it (cmd/paygate to load, components' tests to hold their defaults to their tags); it imports the standard library only, so importing it adds no direction to the map",
	},
	{
		name:    "consumer groups stand alone",
		applies: group,
		forbids: func(d, imp string) bool {
			return (group(imp) && imp != d) || imp == "internal/store" || adapter(imp) || imp == "internal/app" ||
				imp == "producers" || strings.HasPrefix(imp, "producers/") || imp == "internal/ingress"
		},
		why: "a consumer group declares the small interfaces it needs (Store, Channels) and depends on domain, wire, schemas, the runner and the PSP port; internal/app hands it the concrete types",
	},
	{
		name:    "the runner declares its dead-letter writer",
		applies: func(d string) bool { return d == "consumers" },
		forbids: func(_, imp string) bool {
			return imp == "producers" || strings.HasPrefix(imp, "producers/") || imp == "internal/store" || group(imp)
		},
		why: "the runner declares what it needs (DeadLetterWriter) instead of importing the producers",
	},
	{
		name:    "the ingress writes topics and reads the store",
		applies: func(d string) bool { return d == "internal/ingress" },
		forbids: func(_, imp string) bool {
			return imp == "consumers" || strings.HasPrefix(imp, "consumers/") || adapter(imp) || imp == "internal/app"
		},
		why: "the ingress writes topics and reads through the store's read model; it shares request decoding with the groups through wire, not by importing them",
	},
	{
		name:    "adapters know the port only",
		applies: adapter,
		forbids: func(d, imp string) bool {
			return ours(imp) && imp != "domain" && imp != "internal/psp" && imp != "internal/signature" &&
				imp != "internal/psp/pemkey" && !(imp == "internal/psp/psptest" && d != imp)
		},
		why: "a PSP adapter implements internal/psp's port over domain types; nothing else of ours",
	},
	{
		name:    "one composition root",
		applies: func(d string) bool { return true },
		forbids: func(d, imp string) bool {
			return imp == "internal/app" && !strings.HasPrefix(d, "cmd/") && d != "e2e" && d != "internal/bench"
		},
		tests: true,
		why:   "internal/app wires the concrete types; only the commands, the end-to-end tests and the load harness start it",
	},
	{
		name:    "the production binary carries no load generator",
		applies: func(d string) bool { return true },
		forbids: func(d, imp string) bool { return imp == "internal/bench" && d != "cmd/paygate-bench" },
		tests:   true,
		why:     "the load harness is cmd/paygate-bench's alone; paygate (cmd/paygate) never links it",
	},
	{
		name:    "only the store speaks PostgreSQL's driver",
		applies: func(d string) bool { return true },
		forbids: func(d, imp string) bool {
			return imp == "github.com/lib/pq" && !slices.Contains([]string{"internal/store", "internal/pgtest", "migrations", "e2e", "internal/bench", "cmd/paygate-bench"}, d)
		},
		tests: true,
		why:   "SQL lives in internal/store: no one else imports github.com/lib/pq but the test helpers (internal/pgtest, e2e), migrations and the load harness",
	},
}

// group reports whether dir is a consumer group: consumers/<group>.
func group(dir string) bool {
	rest, ok := strings.CutPrefix(dir, "consumers/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// adapter reports whether dir is a PSP adapter: internal/psp/<name>,
// other than the port's helpers.
func adapter(dir string) bool {
	rest, ok := strings.CutPrefix(dir, "internal/psp/")
	return ok && !strings.Contains(rest, "/") && rest != "psptest" && rest != "pemkey"
}

func ours(imp string) bool { return !stdlib(imp) && !strings.Contains(strings.Split(imp, "/")[0], ".") }

// stdlib reports whether an import path is the standard library's (no
// dot in its first element, and not ours).
func stdlib(imp string) bool {
	first := strings.Split(imp, "/")[0]
	return !strings.Contains(first, ".") && !known[first]
}

// known are the first elements of our own import paths, filled by load.
var known = map[string]bool{}

func TestImportsFollowTheMap(t *testing.T) {
	pkgs := load(t)
	var broken []string
	for _, dir := range sortedKeys(pkgs) {
		p := pkgs[dir]
		for _, r := range rules {
			if !r.applies(dir) {
				continue
			}
			check := func(imports map[string]bool, where string) {
				for _, imp := range sortedKeys(imports) {
					if r.forbids(dir, imp) {
						broken = append(broken, dir+where+" imports "+imp+": "+r.name+" — "+r.why)
					}
				}
			}
			check(p.code, "")
			if r.tests {
				check(p.tests, " (tests)")
			}
		}
	}
	for _, b := range broken {
		t.Error(b)
	}
}

// TestTheRulesSeeTheCode guards the test itself: it found the packages it
// judges and reads their imports.
func TestTheRulesSeeTheCode(t *testing.T) {
	pkgs := load(t)
	for _, dir := range []string{"domain", "consumers", "consumers/callbacks", "internal/ingress", "internal/store"} {
		if pkgs[dir] == nil || len(pkgs[dir].code) == 0 {
			t.Errorf("package %s not found or without imports", dir)
		}
	}
	if !pkgs["internal/store"].code["github.com/lib/pq"] {
		t.Error("internal/store does not import github.com/lib/pq: the driver rule checks nothing")
	}
	if !pkgs["consumers/callbacks"].code["domain"] {
		t.Error("consumers/callbacks does not import domain: imports are not read as ours")
	}
}

// load reads the imports of every Go package of the module.
func load(t *testing.T) map[string]*pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(b), "module "+strings.TrimSuffix(module, "/")) {
		t.Fatalf("%s is not the module's root: %v", root, err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() {
			known[e.Name()] = true
		}
	}
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := pkgs[rel]
		if p == nil {
			p = &pkg{code: map[string]bool{}, tests: map[string]bool{}}
			pkgs[rel] = p
		}
		into := p.code
		if strings.HasSuffix(name, "_test.go") {
			into = p.tests
		}
		for _, s := range f.Imports {
			imp, _ := strconv.Unquote(s.Path.Value)
			into[strings.TrimPrefix(imp, module)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
