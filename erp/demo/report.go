package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/erp"
)

// writeReport prints what the workload did and what the database holds now,
// and returns an error naming every invariant found broken.
func writeReport(ctx context.Context, out io.Writer, svc *erp.Service, pool *pgxpool.Pool, res Result, nr *natsRun, start time.Time) error {
	q := dbgen.New(pool) // typed queries straight on the pool, outside any unit of work
	var version string
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	statuses, err := q.OrderCountByStatus(ctx)
	if err != nil {
		return fmt.Errorf("report orders: %w", err)
	}
	levels, err := svc.StockLevels(ctx)
	if err != nil {
		return fmt.Errorf("report stock: %w", err)
	}
	tb, err := svc.TrialBalance(ctx)
	if err != nil {
		return fmt.Errorf("report ledger: %w", err)
	}
	var pending int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox_events WHERE state <> 'delivered'").Scan(&pending); err != nil {
		return fmt.Errorf("report outbox: %w", err)
	}
	var js jsCount
	if nr != nil {
		if js, err = nr.consume(ctx); err != nil {
			return fmt.Errorf("report JetStream: %w", err)
		}
	}

	var broken []error
	check := func(ok bool, format string, args ...any) string {
		if ok {
			return "✓"
		}
		broken = append(broken, fmt.Errorf(format, args...))
		return "✗ BROKEN"
	}
	var b strings.Builder
	head := func(title string) { fmt.Fprintf(&b, "%s\n", title) }
	row := func(label string, value any, note string) {
		b.WriteString(strings.TrimRight(fmt.Sprintf("  %-26s %12v   %s", label, value, note), " ") + "\n")
	}
	o := res.Outcomes

	fmt.Fprintf(&b, "\nREPORT (PostgreSQL %s)\n", strings.Fields(version)[0])
	head("Orders")
	row("requests sent", o.Requests, "")
	row("placed", o.Placed, fmt.Sprintf("%d with their coupon, %d without it (unknown, expired or used up)", o.Discounted, o.CouponRefused))
	row("idempotent replays", o.Replayed, "the original order returned")
	row("refused: out of stock", o.OutOfStock, "nothing written")
	row("then paid", o.Paid, "")
	row("then cancelled", o.Cancelled, "stock returned, journals reversed")
	row("retries seen", res.Retries, "attempts replayed after a deadlock or serialization failure")
	row("in the database", "", byStatus(statuses))

	var mine []erp.StockLevel
	var initial, onHand, sold int64
	stockOK := true
	for _, l := range levels {
		n, ok := res.Catalog.Initial[l.ProductID]
		if !ok {
			continue // another run's product
		}
		mine = append(mine, l)
		initial, onHand, sold = initial+int64(n), onHand+int64(l.OnHand), sold+l.Sold
		if l.OnHand < 0 || int64(l.OnHand)+l.Sold != int64(n) {
			stockOK = false
			broken = append(broken, fmt.Errorf("stock of %s: on hand %d + sold %d, initial %d", l.SKU, l.OnHand, l.Sold, n))
		}
	}
	soldOut := 0
	for _, l := range mine {
		if l.OnHand == 0 {
			soldOut++
		}
	}
	slices.SortStableFunc(mine, func(a, b erp.StockLevel) int { return cmp.Compare(b.Sold, a.Sold) })
	var best []string
	for _, l := range mine[:min(3, len(mine))] {
		best = append(best, fmt.Sprintf("%s %d", l.SKU, l.Sold))
	}
	head(fmt.Sprintf("Stock (%d products)", len(mine)))
	row("initial", initial, "")
	row("on hand", onHand, fmt.Sprintf("%d products sold out", soldOut))
	row("sold", sold, "on hand + sold = initial for every product "+check(stockOK, "stock"))
	row("best sellers", "", strings.Join(best, ", "))

	head("Trial balance")
	for _, a := range tb.Accounts {
		row(a.Code+" "+a.Name, a.Balance.StringFixed(2), "")
	}
	row("sum", tb.Total.StringFixed(2), check(tb.Total.IsZero(), "the trial balance sums to %s", tb.Total))

	events, deliveries, twice := len(res.Deliveries), 0, 0
	for id, n := range res.Deliveries {
		deliveries += n
		if res.Processed[id] != 1 {
			twice++
		}
	}
	announced := o.Placed + o.Paid + o.Cancelled
	head("Outbox (relays → JetStream and an in-process subscriber)")
	row("events", events, "one per placement, payment and cancellation "+
		check(events == announced, "%d events for %d placements, payments and cancellations", events, announced))
	row("marks lost on purpose", res.LostMarks, "delivered, then failed, so delivered again (as after a crash)")
	if nr == nil {
		row("JetStream", "skipped", "no nats-server (apt-get install nats-server, or set NATS_URL)")
	} else {
		dupIDs := 0
		for _, n := range js.perID {
			if n > 1 {
				dupIDs++
			}
		}
		row("JetStream messages", js.messages, fmt.Sprintf("%d redeliveries dropped by Nats-Msg-Id; one per event ", nr.sink.Duplicates())+
			check(js.messages == events && len(js.perID) == events && dupIDs == 0,
				"JetStream holds %d messages under %d ids for %d events", js.messages, len(js.perID), events)+
			", each order's in commit order "+
			check(js.outOfOrder == 0, "%d JetStream messages came after a later one of their order", js.outOfOrder))
	}
	row("subscriber deliveries", deliveries, fmt.Sprintf("%d redeliveries skipped by the inbox; each event processed exactly once ", deliveries-events)+
		check(twice == 0, "%d events processed other than once", twice)+", in commit order per order "+
		check(res.OutOfOrder == 0, "the subscriber processed %d events after a later one of their order", res.OutOfOrder))
	row("pending", pending, check(pending == 0, "%d events left undelivered", pending))

	head("Time")
	row("workload", seconds(res.Elapsed), fmt.Sprintf("%.0f requests/s", float64(o.Requests)/res.Elapsed.Seconds()))
	row("total", seconds(time.Since(start)), "")

	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if len(broken) > 0 {
		return fmt.Errorf("invariants broken:\n%w", errors.Join(broken...))
	}
	return nil
}

func byStatus(rows []dbgen.OrderCountByStatusRow) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = fmt.Sprintf("%d %s", r.Orders, r.Status)
	}
	return strings.Join(parts, ", ")
}
