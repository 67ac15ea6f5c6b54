package localnats_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/localnats"
	"github.com/cortexerp/datalayer/internal/localnats/localnatstest"
)

func TestStartRunsAJetStreamServerOfItsOwnAndStopRemovesIt(t *testing.T) {
	t.Parallel()
	srv := localnatstest.Start(t)
	require.True(t, strings.HasPrefix(srv.URL(), "nats://127.0.0.1:"), srv.URL())
	require.NotEqual(t, "nats://127.0.0.1:4222", srv.URL(), "never the machine's own server")

	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "t.one", []byte("x"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(srv.Dir(), "store", "jetstream"))
	require.NoError(t, err, "the JetStream store is in the server's directory")

	require.NoError(t, srv.Stop())
	require.NoError(t, srv.Stop(), "a second Stop is harmless")
	_, err = os.Stat(srv.Dir())
	require.True(t, os.IsNotExist(err), "Stop removes the directory")
	_, err = nats.Connect(srv.URL(), nats.NoReconnect(), nats.Timeout(time.Second))
	require.Error(t, err, "the server is gone")
}

func TestTwoServersGetTwoPorts(t *testing.T) {
	t.Parallel()
	a, b := localnatstest.Start(t), localnatstest.Start(t)
	require.NotEqual(t, a.URL(), b.URL())
}

func TestStartNamesWhatToInstallWithoutABinary(t *testing.T) {
	t.Setenv(localnats.BinaryEnv, filepath.Join(t.TempDir(), "nats-server"))
	_, err := localnats.Start(t.Context())
	require.ErrorIs(t, err, localnats.ErrNoBinary)
	require.ErrorContains(t, err, "install the Debian package nats-server")
	require.ErrorContains(t, err, localnats.BinaryEnv+"=")
}

func TestStartReportsAServerThatExitsWithItsLog(t *testing.T) {
	t.Parallel()
	// A program that is not nats-server exits at once, saying why.
	script := filepath.Join(t.TempDir(), "fake-nats-server")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho 'bad flags' >&2\nexit 1\n"), 0o755))
	_, err := localnats.Start(t.Context(), localnats.WithBinary(script))
	require.ErrorContains(t, err, "localnats: nats-server exited during start-up\nserver log:\nbad flags")
}

func TestStartChecksItsOptions(t *testing.T) {
	t.Parallel()
	_, err := localnats.Start(t.Context(), localnats.WithBinary(""), nil)
	require.EqualError(t, err, "localnats: WithBinary: path must not be empty\nnil option")
}
