module concertd/bench/loadgen

go 1.21
