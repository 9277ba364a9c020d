package domain

import (
	"errors"
	"fmt"
	"regexp"
)

// OrderStatus is the state of a merchant order, a closed enum:
// pending → paid → (partially_refunded | refunded); pending → closed.
type OrderStatus struct{ s string }

// The order states (DESIGN.md §6).
var (
	OrderPending           = OrderStatus{"pending"}
	OrderPaid              = OrderStatus{"paid"}
	OrderPartiallyRefunded = OrderStatus{"partially_refunded"}
	OrderRefunded          = OrderStatus{"refunded"}
	OrderClosed            = OrderStatus{"closed"}
)

var orderStatuses = []OrderStatus{OrderPending, OrderPaid, OrderPartiallyRefunded, OrderRefunded, OrderClosed}

// ParseOrderStatus reads a stored order status.
func ParseOrderStatus(s string) (OrderStatus, error) {
	for _, st := range orderStatuses {
		if st.s == s {
			return st, nil
		}
	}
	return OrderStatus{}, fmt.Errorf("unknown order status %q", s)
}

// String is the status as stored and published.
func (s OrderStatus) String() string { return s.s }

// IsPaid reports whether money was captured for the order (paid or refunded
// in part or in whole): a new pay request for it is refused.
func (s OrderStatus) IsPaid() bool {
	return s == OrderPaid || s == OrderPartiallyRefunded || s == OrderRefunded
}

// Order errors.
var (
	ErrInvalidOrderID = errors.New("invalid order id")
	ErrAmountConflict = errors.New("order exists with another amount or currency")
	ErrAlreadyPaid    = errors.New("order is already paid")
	ErrOrderClosed    = errors.New("order is closed")
	ErrBadTransition  = errors.New("state transition not allowed")
)

// orderIDPattern is what paygate accepts as a merchant order id: it ends up
// in Kafka keys, URLs and PSP references, so it is kept plain.
var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidOrderID reports whether id is acceptable as a merchant order id.
func ValidOrderID(id string) error {
	if !orderIDPattern.MatchString(id) {
		return fmt.Errorf("%w %q: 1-64 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit", ErrInvalidOrderID, id)
	}
	return nil
}

// Order is a merchant order as the gateway sees it. Its fields change only
// through its methods; the store rebuilds one with RestoreOrder.
type Order struct {
	id          string
	amount      Money
	status      OrderStatus
	paidAttempt string
}

// NewOrder starts a pending order for a positive amount.
func NewOrder(id string, amount Money) (Order, error) {
	if err := ValidOrderID(id); err != nil {
		return Order{}, err
	}
	if amount.IsZero() || amount.Minor() <= 0 {
		return Order{}, fmt.Errorf("order %s: %w", id, ErrNonPositive)
	}
	return Order{id: id, amount: amount, status: OrderPending}, nil
}

// RestoreOrder rebuilds an order from storage; it trusts its input.
func RestoreOrder(id string, amount Money, status OrderStatus, paidAttempt string) Order {
	return Order{id: id, amount: amount, status: status, paidAttempt: paidAttempt}
}

// ID is the merchant order id.
func (o Order) ID() string { return o.id }

// Amount is what the order costs.
func (o Order) Amount() Money { return o.amount }

// Status is the order state.
func (o Order) Status() OrderStatus { return o.status }

// PaidAttempt is the transaction code of the attempt that paid the order,
// "" while unpaid. Later successful attempts are duplicate payments.
func (o Order) PaidAttempt() string { return o.paidAttempt }

// AcceptPayRequest decides whether a (repeat) pay request for amount may
// start a new attempt of this order.
func (o Order) AcceptPayRequest(amount Money) error {
	if !o.amount.Equal(amount) {
		return fmt.Errorf("order %s is %s, request says %s: %w", o.id, o.amount, amount, ErrAmountConflict)
	}
	switch {
	case o.status.IsPaid():
		return fmt.Errorf("order %s: %w", o.id, ErrAlreadyPaid)
	case o.status == OrderClosed:
		return fmt.Errorf("order %s: %w", o.id, ErrOrderClosed)
	}
	return nil
}

// OrderFor is the order a pay request plans against: a new one for an
// order paygate does not know (existing nil), or the existing one if it
// accepts the request (AcceptPayRequest). On refusal the order is still
// returned (the existing one), with the error.
func OrderFor(existing *Order, in PayIntent) (Order, error) {
	if existing == nil {
		return NewOrder(in.OrderID, in.Amount)
	}
	return *existing, existing.AcceptPayRequest(in.Amount)
}

// pay marks the order paid by attempt code.
func (o Order) pay(code string) (Order, error) {
	if o.status != OrderPending {
		return o, fmt.Errorf("order %s %s → paid: %w", o.id, o.status, ErrBadTransition)
	}
	o.status, o.paidAttempt = OrderPaid, code
	return o, nil
}

// Close ends a pending order that was never paid (expired or cancelled).
func (o Order) Close() (Order, error) {
	if o.status != OrderPending {
		return o, fmt.Errorf("order %s %s → closed: %w", o.id, o.status, ErrBadTransition)
	}
	o.status = OrderClosed
	return o, nil
}
