package schemas

import (
	"encoding/csv"
	"io"
	"strconv"
)

// ReconCSVHeader is the header line of WriteReconCSV.
var ReconCSVHeader = []string{"channel", "day", "run_id", "kind", "item", "reference", "psp_reference", "our_amount", "our_currency",
	"psp_amount", "psp_currency", "psp_status", "heal", "detail"}

// WriteReconCSV writes the findings of runs as CSV, one line per finding,
// for finance's spreadsheets: `paygate recon report --format csv` and the
// console's download write the same file.
func WriteReconCSV(out io.Writer, runs []ReconRun) error {
	w := csv.NewWriter(out)
	_ = w.Write(ReconCSVHeader)
	cells := func(a *ReconAmount) [2]string {
		if a == nil {
			return [2]string{"", ""}
		}
		return [2]string{strconv.FormatInt(a.Amount, 10), a.Currency}
	}
	for _, r := range runs {
		for _, m := range r.Findings {
			ours, psp := cells(m.Ours), cells(m.PSP)
			_ = w.Write([]string{r.Channel, r.Day, r.RunID, m.Kind, m.Item, m.Reference, m.PSPReference, ours[0], ours[1],
				psp[0], psp[1], m.PSPStatus, m.Heal, m.Detail})
		}
	}
	w.Flush()
	return w.Error()
}
