// Package wire translates between domain values and the messages of
// package schemas: the one owner of how a domain fact is written on a
// topic and of how a message becomes a domain value. The ingress and the
// consumer groups read requests through it, so that both read them one
// way; the groups and the store encode events through it, so that an
// event has one encoding whichever path emits it.
//
// It imports domain and schemas only (internal/archtest holds it so).
package wire
