package localpg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cortexerp/datalayer/internal/replag"
)

// StandbyOption configures one standby of [Server.StartStandby].
type StandbyOption interface {
	applyStandby(*standbyConfig) error
}

type standbyOptionFunc func(*standbyConfig) error

func (f standbyOptionFunc) applyStandby(c *standbyConfig) error { return f(c) }

type standbyConfig struct {
	applyDelay time.Duration
	settings   [][2]string
}

// ApplyDelay makes the standby replay each commit no sooner than d after the
// primary committed it (recovery_min_apply_delay): a replica that lags on
// purpose. The standby still receives the WAL at once. StartStandby and
// [Standby.CatchUp] wait for the replay, so they take about d longer when
// the primary committed anything meanwhile.
func ApplyDelay(d time.Duration) StandbyOption {
	return standbyOptionFunc(func(c *standbyConfig) error {
		if d < 0 {
			return fmt.Errorf("localpg: ApplyDelay(%s): must not be negative", d)
		}
		c.applyDelay = d
		return nil
	})
}

// StandbySetting passes a server setting (postgres -c name=value) to the
// standby only, after the primary's settings, which it inherits.
func StandbySetting(name, value string) StandbyOption {
	return standbyOptionFunc(func(c *standbyConfig) error {
		if !settingName.MatchString(name) {
			return fmt.Errorf("localpg: StandbySetting: bad setting name %q", name)
		}
		c.settings = append(c.settings, [2]string{name, value})
		return nil
	})
}

// Standby is a streaming hot standby of a [Server] started from binaries,
// made by [Server.StartStandby]. Its methods are safe for concurrent use;
// Halt, Resume, Promote and Stop are serialised.
type Standby struct {
	primary *Server
	slot    string
	url     string

	mu       sync.Mutex
	stopped  bool
	promoted bool
	pm       *postmaster
}

// StartStandby starts a streaming hot standby of s: a base backup taken with
// the primary's own pg_basebackup (as the user the primary runs as; an
// installation without one, such as the builds tools/pgfetch.sh fetches, gets
// the same backup through PostgreSQL's low-level backup API and a copy of the
// data directory), which streams from the primary through a physical
// replication slot of its own
// (localpg_standby_1, _2, …) and runs the primary's settings (fsync off, 200
// connections, WithSetting) on a free port. It returns once the standby
// accepts connections and has replayed the primary's WAL up to the moment
// StartStandby was called ([Standby.CatchUp]). [Server.Stop] stops and
// removes every standby; [Standby.Stop] removes one. Only a server started
// from binaries has standbys; the others return [ErrNotSupported].
func (s *Server) StartStandby(ctx context.Context, opts ...StandbyOption) (*Standby, error) {
	var (
		sc   standbyConfig
		errs []error
	)
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("localpg: StandbyOption must not be nil"))
			continue
		}
		if err := o.applyStandby(&sc); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.pm == nil:
		return nil, fmt.Errorf("start a standby of a %s server: %w (start the primary with WithSources(SourceBinaries))", s.source, ErrNotSupported)
	case s.stopped:
		return nil, fmt.Errorf("start a standby: %w", ErrStopped)
	}
	s.standbySeq++
	slot := fmt.Sprintf("localpg_standby_%d", s.standbySeq)
	pm, err := s.pm.newStandby(ctx, slot, sc)
	if err != nil {
		_ = dropSlot(ctx, s.url, slot) // the base backup may have made it
		return nil, fmt.Errorf("localpg: start standby %s: %w", slot, err)
	}
	sb := &Standby{primary: s, slot: slot, url: pm.url(), pm: pm}
	if err := sb.catchUp(ctx); err != nil {
		_ = sb.stopLocked(context.WithoutCancel(ctx), true)
		return nil, fmt.Errorf("localpg: start standby %s: %w", slot, err)
	}
	s.standbys = append(s.standbys, sb)
	return sb, nil
}

// Standbys returns the standbys of s that have not been stopped, oldest first.
func (s *Server) Standbys() []*Standby {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Standby(nil), s.standbys...)
}

// stopStandbysLocked stops every standby of s (with s.mu held).
func (s *Server) stopStandbysLocked(ctx context.Context) error {
	var errs []error
	for _, sb := range s.standbys {
		sb.mu.Lock()
		errs = append(errs, sb.stopLocked(ctx, false))
		sb.mu.Unlock()
	}
	s.standbys = nil
	return errors.Join(errs...)
}

// URL returns the connection string of the standby's "postgres" database as
// a superuser, e.g. postgres://postgres@127.0.0.1:54322/postgres?sslmode=disable.
func (sb *Standby) URL() string { return sb.url }

// URLFor returns the connection string of database dbname on the standby.
func (sb *Standby) URLFor(dbname string) string {
	u, _ := url.Parse(sb.url) // built by postmaster.url: always parses
	u.Path = "/" + dbname
	return u.String()
}

// Slot returns the name of the standby's replication slot on the primary.
func (sb *Standby) Slot() string { return sb.slot }

// String describes the standby, e.g.
// "standby localpg_standby_1 postgres://postgres@127.0.0.1:54322/postgres?sslmode=disable".
func (sb *Standby) String() string { return "standby " + sb.slot + " " + sb.url }

// CatchUp waits until the standby has replayed the primary's WAL up to the
// primary's current insert position, read when CatchUp starts: every
// transaction committed on the primary before the call is then visible on
// the standby. It polls pg_last_wal_replay_lsn() until ctx ends.
func (sb *Standby) CatchUp(ctx context.Context) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch {
	case sb.stopped:
		return fmt.Errorf("catch up: %w", ErrStopped)
	case sb.promoted:
		return errors.New("localpg: catch up: the standby was promoted and replays no more")
	}
	return sb.catchUp(ctx)
}

// Halt stops the standby's postmaster with a fast shutdown, keeping its data
// directory, port and slot, so that a test can watch a replica go away; the
// primary keeps its WAL for the slot. [Standby.Resume] brings it back.
func (sb *Standby) Halt(ctx context.Context) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.stopped {
		return fmt.Errorf("halt: %w", ErrStopped)
	}
	return sb.pm.halt(ctx)
}

// Resume starts a halted standby again on the same port and waits until it
// accepts connections; it then streams what it missed. Resuming a running
// standby does nothing.
func (sb *Standby) Resume(ctx context.Context) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.stopped {
		return fmt.Errorf("resume: %w", ErrStopped)
	}
	return sb.pm.resume(ctx)
}

// Promote turns the standby into a primary of its own (pg_promote) and waits
// until it accepts writes. It no longer follows the primary; its slot there
// stays until Stop.
func (sb *Standby) Promote(ctx context.Context) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.stopped {
		return fmt.Errorf("promote: %w", ErrStopped)
	}
	var ok bool
	err := withConn(ctx, sb.url, func(q *pgx.Conn) error {
		return q.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok)
	})
	switch {
	case err != nil:
		return fmt.Errorf("localpg: promote %s: %w", sb.slot, err)
	case !ok:
		return fmt.Errorf("localpg: promote %s: pg_promote did not finish within 60s", sb.slot)
	}
	sb.promoted = true
	return nil
}

// Stop shuts the standby down, removes its directory and drops its slot on
// the primary (when the primary runs), so that the primary keeps no WAL for
// it. Stop is safe to call more than once.
func (sb *Standby) Stop(ctx context.Context) error {
	s := sb.primary
	s.mu.Lock()
	defer s.mu.Unlock()
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.stopped {
		return nil
	}
	for i, o := range s.standbys {
		if o == sb {
			s.standbys = append(s.standbys[:i], s.standbys[i+1:]...)
			break
		}
	}
	return sb.stopLocked(ctx, !s.stopped)
}

// stopLocked stops sb's postmaster and removes its directory, then drops its
// slot when dropSlot is set.
func (sb *Standby) stopLocked(ctx context.Context, dropSlot bool) error {
	if sb.stopped {
		return nil
	}
	sb.stopped = true
	err := sb.pm.stop(ctx)
	if dropSlot {
		err = errors.Join(err, sb.dropSlot(ctx))
	}
	return err
}

// dropSlotTimeout bounds the wait for a stopped standby's walsender to let go
// of its slot.
const dropSlotTimeout = 30 * time.Second

// dropSlot drops sb's slot on the primary; see dropSlot.
func (sb *Standby) dropSlot(ctx context.Context) error {
	if err := dropSlot(ctx, sb.primary.url, sb.slot); err != nil {
		return fmt.Errorf("localpg: drop replication slot %s: %w", sb.slot, err)
	}
	return nil
}

// dropSlot drops slot on the server at url, if it exists, once no walsender
// holds it (the walsender of a stopped standby exits on its own, soon after).
func dropSlot(ctx context.Context, url, slot string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropSlotTimeout)
	defer cancel()
	return withConn(ctx, url, func(q *pgx.Conn) error {
		return poll(ctx, func() (bool, error) {
			var active bool
			err := q.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return true, nil
			case err != nil || active:
				return false, err
			}
			_, err = q.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot)
			return err == nil, err
		})
	})
}

// catchUp waits until sb has replayed the primary's current insert position.
func (sb *Standby) catchUp(ctx context.Context) error {
	var target string
	if err := withConn(ctx, sb.primary.url, func(q *pgx.Conn) error {
		return q.QueryRow(ctx, replag.InsertLSNSQL).Scan(&target)
	}); err != nil {
		return fmt.Errorf("catch up: read the primary's WAL position: %w", err)
	}
	err := withConn(ctx, sb.url, func(q *pgx.Conn) error {
		return poll(ctx, func() (bool, error) {
			var done bool
			err := q.QueryRow(ctx, replag.ReplayedSQL, target).Scan(&done)
			return done, err
		})
	})
	if err != nil {
		return fmt.Errorf("catch up: wait for the standby to replay %s: %w", target, err)
	}
	return nil
}

// poll calls cond until it reports true or an error, or ctx ends, backing
// off from 1 ms to 50 ms between calls.
func poll(ctx context.Context, cond func() (bool, error)) error {
	delay := time.Millisecond
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// withConn runs fn on a connection to url, closed afterwards.
func withConn(ctx context.Context, url string, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return fn(conn)
}
