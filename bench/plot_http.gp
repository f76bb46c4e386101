# plot_http.gp - from bench_http.sh's CSVs: requests/s and p99 against
# connections for each server (the floor included).
#   gnuplot -e "csv='build/bench/http.csv'; out='build/bench/http.png'" bench/plot_http.gp
if (!exists("csv")) csv = 'build/bench/http.csv'
if (!exists("out")) out = 'build/bench/http.png'
set terminal pngcairo size 1200,500 font ",10"
set output out
set datafile separator ','
set key top left font ',9'
set grid
set logscale xy
set xrange [0.8:80]
set xtics ("1" 1, "16" 16, "64" 64)
set xlabel 'connections (wrk)'
set multiplot layout 1,2 title 'POST /predict, batch 1 (Fashion-MNIST image), 2 shared cores; median of interleaved runs'
set ylabel 'requests/s'
set title 'throughput'
plot for [t in "floor qatserve-json qatserve-json8 qatserve-bin qatserve-json6 mhd-jansson flask-torch"] \
  sprintf('< grep "^%s," %s', t, csv) using 2:3 with linespoints lw 2 pt 7 title t
set ylabel 'p99 latency, ms'
set title 'p99 latency'
plot for [t in "floor qatserve-json qatserve-json8 qatserve-bin qatserve-json6 mhd-jansson flask-torch"] \
  sprintf('< grep "^%s," %s', t, csv) using 2:6 with linespoints lw 2 pt 7 title t
unset multiplot
