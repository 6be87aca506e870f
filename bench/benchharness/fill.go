package main

// fillRounds bounds the rounds of re-sending the connections phase 1 did
// not complete when the table is filled for phase 2.
const fillRounds = 20

// fillMore reports whether the filling of the table goes on after round
// rounds of re-sending (0: only the first pass), last being the latest
// pass: while connections are missing, every round established some
// (a worker stall during a round loses a few of the connections it
// re-sends, so at 16 M flows five rounds were not always enough), and
// at most fillRounds rounds.
func fillMore(round int, last connectResult) bool {
	return round < fillRounds && !last.pass() && (round == 0 || last.Established > 0)
}
