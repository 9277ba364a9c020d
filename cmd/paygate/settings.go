package main

import (
	"fmt"
	"strings"

	"github.com/paygate/paygate/internal/settings"
)

// module is the prefix of our packages' import paths, left off in help.
const module = "github.com/paygate/paygate/"

// envHelp is the environment part of `paygate help`: every setting of
// Config, from its tags (internal/settings), under the package whose
// Config declares it, packages in the order Config composes them. A
// setting two packages read is listed under the first and names the
// others.
func envHelp() string {
	list, err := settings.List(Config{})
	if err != nil {
		// TestHelpListsEverySetting fails first: the tags are read
		// at every start.
		return "Environment: " + err.Error() + "\n"
	}
	var order []string
	groups := map[string][]settings.Setting{}
	width := 0
	for _, s := range list {
		c := component(s.Components[0])
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], s)
		width = max(width, len(s.Name))
	}
	var b strings.Builder
	b.WriteString("Environment (default), by the package each setting configures:\n")
	indent := strings.Repeat(" ", 4+width+1) // where a value starts
	for _, c := range order {
		fmt.Fprintf(&b, "  %s\n", c)
		for _, s := range groups[c] {
			note := s.Help
			if len(s.Components) > 1 {
				var also []string
				for _, o := range s.Components[1:] {
					also = append(also, component(o))
				}
				note = strings.TrimPrefix(note+"; also "+strings.Join(also, ", "), "; ")
			}
			v := s.Default
			switch {
			case v == "":
				v = "(" + note + ")"
			case note != "":
				v += " (" + note + ")"
			}
			fmt.Fprintf(&b, "    %-*s %s\n", width, s.Name, strings.ReplaceAll(v, "\n", "\n"+indent))
		}
	}
	return b.String()
}

// component names a package as help shows it: its path in the module
// (cmd/paygate for package main).
func component(pkgPath string) string {
	if pkgPath == "main" {
		return "cmd/paygate"
	}
	return strings.TrimPrefix(pkgPath, module)
}
