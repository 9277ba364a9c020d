package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/paygate/paygate/internal/console"
)

// runConsole is `paygate console hash-password`: it reads a password
// (the first line of stdin) and prints its bcrypt hash, for
// PAYGATE_CONSOLE_USERS. The password never appears in a command line or
// the shell's history.
func runConsole(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "hash-password" {
		return usageError{"console hash-password (reads the password from stdin)"}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read the password: %w", err)
	}
	h, err := console.HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		return usageError{err.Error()}
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}
