package bench

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Config says what Run measures and for how long. The zero value of a field
// means its default (see Defaults).
type Config struct {
	// Scale is pgbench's scale factor: 100 000 accounts, 10 tellers and one
	// branch per unit. Default 16: pgbench's advice is a scale at least the
	// largest client count, or the clients mostly queue for branch locks.
	Scale int
	// Duration is the measured time of one TPC-B cell (a variant at a client
	// count), split evenly over the rounds. Default 8s.
	Duration time.Duration
	// Rounds is how many times every cell runs, interleaved. Default 4.
	Rounds int
	// Clients are the client counts (connections and goroutines, or pgbench
	// clients) of the TPC-B cells. Default 1, 4, 16.
	Clients []int
	// RTTs are round-trip delays the TPC-B variants also run with, at
	// RTTClients clients, through a proxy on loopback that holds every chunk
	// for half the delay each way (0: through the proxy, no delay). Each is
	// a cell of its own, interleaved with the others in every round.
	// Default: none.
	RTTs []time.Duration
	// RTTClients is the client count of the RTTs cells. Default 1.
	RTTClients int
	// ProxyProcess runs each delaying proxy in a child process: this
	// program's own executable started again, which must call ProxyMain
	// first thing in main (TestMain in a test binary). In the Go clients'
	// process the proxy would share their scheduler, their two cores' worth
	// of threads and their CPU time, delaying the Go variants' round trips
	// more than pgbench's. Default false: in this process.
	ProxyProcess bool
	// CopyRows is the number of products each bulk-load method writes.
	// Default 100 000.
	CopyRows int
	// CopyReps is how many times each bulk-load method runs (median).
	// Default 3.
	CopyReps int
	// SetupReps is how many databases are cloned and migrated (median).
	// Default 5.
	SetupReps int
	// Pgbench and Psql are the paths of the client programs. Default: found on
	// PATH, else under /usr/lib/postgresql/*/bin (the newest).
	Pgbench, Psql string
	// Command is the command line recorded in the report (e.g. "go run
	// ./cmd/bench -scale 10"). Default: none.
	Command string
	// Progress receives one line per finished step. Default: discarded.
	Progress io.Writer
	// ServerEnv names the variables that may give the server to measure
	// (localpg.WithEnvVars). Default: localpg's, DATABASE_URL and
	// TEST_DATABASE_URL; the tests name dbtest's opt-in variable instead.
	ServerEnv []string
}

// Defaults returns the configuration `make bench` runs with: about four
// minutes on a two-core machine.
func Defaults() Config {
	return Config{
		Scale:     16,
		Duration:  8 * time.Second,
		Rounds:    4,
		Clients:   []int{1, 4, 16},
		CopyRows:  100_000,
		CopyReps:  3,
		SetupReps: 5,
	}
}

// withDefaults fills the zero fields of c from Defaults and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := Defaults()
	if c.Scale == 0 {
		c.Scale = d.Scale
	}
	if c.Duration == 0 {
		c.Duration = d.Duration
	}
	if c.Rounds == 0 {
		c.Rounds = d.Rounds
	}
	if len(c.Clients) == 0 {
		c.Clients = d.Clients
	}
	if c.RTTClients == 0 {
		c.RTTClients = 1
	}
	if c.CopyRows == 0 {
		c.CopyRows = d.CopyRows
	}
	if c.CopyReps == 0 {
		c.CopyReps = d.CopyReps
	}
	if c.SetupReps == 0 {
		c.SetupReps = d.SetupReps
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	var errs []error
	if c.Scale < 1 {
		errs = append(errs, fmt.Errorf("scale %d: want at least 1", c.Scale))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %v: want a positive duration", c.Duration))
	}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds %d: want at least 1", c.Rounds))
	}
	seen := map[int]bool{}
	for _, n := range c.Clients {
		switch {
		case n < 1:
			errs = append(errs, fmt.Errorf("clients %d: want at least 1", n))
		case seen[n]:
			errs = append(errs, fmt.Errorf("clients %d: listed twice", n))
		}
		seen[n] = true
	}
	seenRTT := map[time.Duration]bool{}
	for _, d := range c.RTTs {
		switch {
		case d < 0:
			errs = append(errs, fmt.Errorf("rtt %v: want 0 or more", d))
		case seenRTT[d]:
			errs = append(errs, fmt.Errorf("rtt %v: listed twice", d))
		}
		seenRTT[d] = true
	}
	if c.RTTClients < 1 {
		errs = append(errs, fmt.Errorf("rtt clients %d: want at least 1", c.RTTClients))
	}
	if c.CopyRows < 1 {
		errs = append(errs, fmt.Errorf("copy rows %d: want at least 1", c.CopyRows))
	}
	if c.CopyReps < 1 {
		errs = append(errs, fmt.Errorf("copy reps %d: want at least 1", c.CopyReps))
	}
	if c.SetupReps < 1 {
		errs = append(errs, fmt.Errorf("setup reps %d: want at least 1", c.SetupReps))
	}
	return c, errors.Join(errs...)
}

// Validate reports every bad value of c (after defaults), all of them
// together, each naming its field.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// slice is how long each variant runs in one round: Duration/Rounds rounded
// to whole seconds (pgbench -T counts seconds), at least one second.
func (c Config) slice() time.Duration {
	rounds := max(c.Rounds, 1)
	s := (c.Duration/time.Duration(rounds) + time.Second/2).Truncate(time.Second)
	return max(s, time.Second)
}
