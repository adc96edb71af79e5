module datera.example/pause

go 1.22
