// Command lift-automation drives the pinned Pulumi CLI through Pulumi's own
// Go Automation API, for two jobs of lift's test suite:
//
//	lift-automation record-component DIR OUT
//	    runs `up` on an inline program with a component resource that
//	    registers no outputs (a Stash inside it), and writes the engine events
//	    it streamed to OUT, one JSON object a line. lift's ledger is tested on
//	    that real stream.
//	lift-automation up-bench DIR STACK RUNS
//	    runs UpsertStackLocalSource on the program in DIR, then RUNS `up`s with
//	    an event stream, and prints each one's wall time in nanoseconds, one a
//	    line: the Go Automation API contender of `cargo xtask pulumi-bench`.
//
// The backend, passphrase and PULUMI_HOME come from the environment, and
// `pulumi` from PATH, as for any Automation API program.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

type group struct {
	pulumi.ResourceState
}

func componentProgram(ctx *pulumi.Context) error {
	g := &group{}
	if err := ctx.RegisterComponentResource("lift:test:Group", "group", g); err != nil {
		return err
	}
	// No RegisterResourceOutputs: the engine then sends no resOutputsEvent for the group.
	_, err := pulumi.NewStash(ctx, "member", &pulumi.StashArgs{Input: pulumi.String("kept")}, pulumi.Parent(g))
	return err
}

func recordComponent(dir, out string) error {
	ctx := context.Background()
	stack, err := auto.UpsertStackInlineSource(ctx, "component", "lift-component", componentProgram, auto.WorkDir(dir))
	if err != nil {
		return err
	}
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	defer file.Close()
	ch := make(chan events.EngineEvent)
	done := make(chan error, 1)
	go func() {
		enc := json.NewEncoder(file)
		enc.SetEscapeHTML(false)
		var werr error
		for event := range ch {
			if werr == nil {
				werr = enc.Encode(event.EngineEvent)
			}
		}
		done <- werr
	}()
	if _, err := stack.Up(ctx, optup.EventStreams(ch)); err != nil {
		return err
	}
	return <-done
}

func upBench(dir, stackName string, runs int) error {
	ctx := context.Background()
	stack, err := auto.UpsertStackLocalSource(ctx, stackName, dir)
	if err != nil {
		return err
	}
	for i := 0; i < runs; i++ {
		ch := make(chan events.EngineEvent)
		drained := make(chan int, 1)
		go func() {
			n := 0
			for range ch {
				n++
			}
			drained <- n
		}()
		started := time.Now()
		if _, err := stack.Up(ctx, optup.EventStreams(ch)); err != nil {
			return err
		}
		<-drained
		fmt.Println(time.Since(started).Nanoseconds())
	}
	return nil
}

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "record-component":
		err = recordComponent(os.Args[2], os.Args[3])
	case len(os.Args) == 5 && os.Args[1] == "up-bench":
		runs, perr := strconv.Atoi(os.Args[4])
		if perr != nil {
			err = fmt.Errorf("RUNS must be a number: %w", perr)
		} else {
			err = upBench(os.Args[2], os.Args[3], runs)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: lift-automation record-component DIR OUT | up-bench DIR STACK RUNS")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lift-automation:", err)
		os.Exit(1)
	}
}
