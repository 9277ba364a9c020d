package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
)

var driverBadConn = driver.ErrBadConn

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")
