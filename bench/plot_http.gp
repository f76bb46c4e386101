# plot_http.gp - from bench_http.sh's CSVs: requests/s and p99 against
# connections for each server, and the dynamic-batching trade-off.
#   gnuplot -e "csv='build/bench/http.csv'; out='build/bench/http.png'; \
#     bcsv='build/bench/batching.csv'; bout='build/bench/batching.png'" bench/plot_http.gp
if (!exists("csv")) csv = 'build/bench/http.csv'
if (!exists("out")) out = 'build/bench/http.png'
if (!exists("bcsv")) bcsv = 'build/bench/batching.csv'
if (!exists("bout")) bout = 'build/bench/batching.png'
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

set output bout
set terminal pngcairo size 700,450 font ",10"
unset logscale
set logscale x
set xrange [*:*]
set xtics auto
set xlabel 'batch window, us (0 plotted at 10 = off)'
set ylabel 'requests/s'
set y2label 'latency, ms'
set ytics nomirror
set y2tics
set title 'dynamic batching at 64 connections (int8 only, batch-1 requests)'
plot bcsv every ::1 using ($1 > 0 ? $1 : 10):2 axes x1y1 with linespoints lw 2 pt 7 title 'requests/s', \
     bcsv every ::1 using ($1 > 0 ? $1 : 10):3 axes x1y2 with linespoints lw 2 dt 2 title 'p50 ms', \
     bcsv every ::1 using ($1 > 0 ? $1 : 10):5 axes x1y2 with linespoints lw 2 dt 3 title 'p99 ms'
