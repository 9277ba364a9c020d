package domain

import "testing"

func BenchmarkDecideCallbackPaid(b *testing.B) {
	amt := MustMoney(1999, "USD")
	o := RestoreOrder("A1", amt, OrderPending, "")
	a := RestoreAttempt("tc1", "A1", "sim", amt, AttemptPending, "sp1", "")
	n := Notification{TransactionCode: "tc1", PSPReference: "sp1", Status: PSPSucceeded, Amount: amt}
	b.ReportAllocs()
	for b.Loop() {
		if d, err := DecideCallback(o, a, n); err != nil || d.Outcome != OutcomePaid {
			b.Fatal(d.Outcome, err)
		}
	}
}

func BenchmarkDecideCallbackDuplicate(b *testing.B) {
	amt := MustMoney(1999, "USD")
	o := RestoreOrder("A1", amt, OrderPaid, "tc1")
	a := RestoreAttempt("tc1", "A1", "sim", amt, AttemptPaid, "sp1", "")
	n := Notification{TransactionCode: "tc1", PSPReference: "sp1", Status: PSPSucceeded, Amount: amt}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecideCallback(o, a, n); err != nil {
			b.Fatal(err)
		}
	}
}
