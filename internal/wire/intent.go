package wire

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

// PayIntent turns a pay request into a domain intent (amount and currency
// checked; the rest is checked by PayIntent.Validate).
func PayIntent(req schemas.PayRequest, messageID string, raw []byte) (domain.PayIntent, error) {
	amount, err := domain.NewMoney(req.Amount, req.Currency)
	if err != nil {
		return domain.PayIntent{}, fmt.Errorf("pay request %s: %w", req.OrderID, err)
	}
	return domain.PayIntent{
		MessageID: messageID, OrderID: req.OrderID, Amount: amount, Country: req.Country, Method: req.Method,
		Description: req.Description, Bank: req.Bank, Channel: req.Channel, Raw: raw,
		BillingCountry: req.BillingCountry, CardFingerprint: req.CardFingerprint, BankAccount: req.BankAccount,
		Buyer: domain.Buyer{ID: req.Buyer.ID, Email: req.Buyer.Email, IP: req.Buyer.IP, Device: req.Buyer.Device,
			IPCountry: req.Buyer.IPCountry},
		Returns: domain.ReturnURLs{Success: req.ReturnURLs.Success, Failure: req.ReturnURLs.Failure, Pending: req.ReturnURLs.Pending},
	}, nil
}

// RefundIntent turns a refund request into a domain intent, with the hash
// that tells a retry (same content) from a conflict (same refund id, other
// content). The hash is over the decoded request, so spacing and field
// order do not matter.
func RefundIntent(req schemas.RefundRequest, messageID string, raw []byte) (domain.RefundIntent, error) {
	amount, err := domain.NewMoney(req.Amount, req.Currency)
	if err != nil {
		return domain.RefundIntent{}, fmt.Errorf("refund request %s: %w", req.RefundID, err)
	}
	canon, err := json.Marshal(req)
	if err != nil {
		return domain.RefundIntent{}, err
	}
	h := sha256.Sum256(canon)
	in := domain.RefundIntent{MessageID: messageID, RefundID: req.RefundID, OrderID: req.OrderID, TransactionCode: req.TransactionCode,
		Amount: amount, Reason: req.Reason, BodyHash: h[:], Raw: raw}
	if err := in.Validate(); err != nil {
		return in, err
	}
	return in, nil
}
