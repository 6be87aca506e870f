package main

import "time"

// fillRounds bounds the rounds of re-sending the connections phase 1 did
// not complete when the table is filled for phase 2.
const fillRounds = 20

// fillDrain is the least time each round of re-sending waits, after the
// last frame it received, for frames still to come. The trials' own drain
// (50 ms) is part of the measurement; the fill is not measured, and its
// rounds must outlast a stall of natgw's worker: at 16 M flows a round of
// a few hundred connections lasted 59-147 ms, and a worker that stalled
// for longer than that translated the round's first packets after the
// generator had stopped waiting (BENCHMARKS.md). The round then
// established nothing, the fill gave up, and the frames natgw had
// translated and counted were left in the ring to the generator, unread.
const fillDrain = time.Second

// fillMore reports whether the filling of the table goes on after round
// rounds of re-sending (0: only the first pass), last being the latest
// pass: while connections are missing, every round established some
// (a worker stall during a round loses a few of the connections it
// re-sends, so at 16 M flows five rounds were not always enough), and
// at most fillRounds rounds.
func fillMore(round int, last connectResult) bool {
	return round < fillRounds && !last.pass() && (round == 0 || last.Established > 0)
}

// fillMissing re-sends the connections the first pass of the fill (last)
// did not complete, in rounds while fillMore says so: round(n) runs round
// n (2, 3, ...) and returns it, or an error that ends the fill. The
// engine's drain (*drain) is at least fillDrain during the rounds and is
// restored after. It returns the last round run (last when none ran).
func fillMissing(last connectResult, drain *time.Duration, round func(n int) (connectResult, error)) (connectResult, error) {
	old := *drain
	*drain = max(old, fillDrain)
	defer func() { *drain = old }()
	for r := 0; fillMore(r, last); r++ {
		var err error
		if last, err = round(r + 2); err != nil {
			return last, err
		}
	}
	return last, nil
}
