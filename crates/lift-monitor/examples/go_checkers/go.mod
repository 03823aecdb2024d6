module lift.example/go_checkers

go 1.22
