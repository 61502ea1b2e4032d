module example.com/goequiv

go 1.22
