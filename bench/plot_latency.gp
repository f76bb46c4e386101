# plot_latency.gp - the distribution of the server's per-request compute
# latency, int8 vs fp32 baseline, from bench_latency.py's latency_cdf.csv.
#   gnuplot -e "csv='build/bench/latency_cdf.csv'; out='build/bench/latency.png'" bench/plot_latency.gp
if (!exists("csv")) csv = 'build/bench/latency_cdf.csv'
if (!exists("out")) out = 'build/bench/latency.png'
set terminal pngcairo size 800,450 font ",10"
set output out
set datafile separator ','
set logscale x
set grid
set key bottom right
set xlabel 'compute latency per request, us (server-reported latency\_us, log scale)'
set ylabel 'fraction of requests'
set yrange [0:1]
set title 'POST /predict batch 1, Fashion-MNIST model 784-256-128-10: int8 vs fp32 baseline (CDF)'
plot csv every ::1 using 2:1 with lines lw 2 title 'int8 (quantize + integer layers + dequantize)', \
     csv every ::1 using 3:1 with lines lw 2 title 'fp32 baseline (OpenBLAS)'
