//! Translation cost, without any I/O: what the gateway's hot path spends in the provider crates.
//! Run: `cargo bench -p switchyard-translate-bench`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchyard_core::ServerSide;
use switchyard_openai::OpenAiServer;
use switchyard_translate_bench::{
    large_request, providers, response, small_request, stream, target, translate_stream,
};

/// OpenAI JSON from the client → canonical → each provider's native body (the per-request
/// part: the gateway makes a target's URL and headers once, see `Provider::endpoint`).
fn requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    for (size, body) in [
        ("small", small_request()),
        ("32k_tools", large_request(32 << 10)),
    ] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse_openai", size), &body, |b, body| {
            b.iter(|| OpenAiServer.parse_request(None, black_box(body)))
        });
        for (name, p) in providers() {
            g.bench_with_input(
                BenchmarkId::new(format!("openai_to_{name}"), size),
                &body,
                |b, body| {
                    b.iter(|| {
                        let req = OpenAiServer.parse_request(None, black_box(body)).ok();
                        req.map(|r| p.build_body(&r, &target("bench-model")).is_ok())
                    })
                },
            );
        }
    }
    g.finish();
}

/// Each provider's native response → canonical → OpenAI JSON for the client.
fn responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("response");
    for (name, p) in providers() {
        for case in ["plain", "tools"] {
            let Some(body) = response(name, case) else {
                continue;
            };
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_to_openai"), case),
                &body,
                |b, body| {
                    b.iter(|| {
                        p.parse_response(black_box(body))
                            .map(|r| OpenAiServer.encode_response(&r))
                    })
                },
            );
            // What the gateway does instead when the answer is already OpenAI's.
            if p.answer_format().is_some() && p.answer_format() == OpenAiServer.wire_format() {
                g.bench_with_input(
                    BenchmarkId::new(format!("{name}_forward_check"), case),
                    &body,
                    |b, body| b.iter(|| p.forwardable(black_box(body))),
                );
            }
        }
    }
    g.finish();
}

/// Per-chunk cost of the stream path (provider SSE → canonical → OpenAI SSE): the figure is
/// per element, one element being one upstream text chunk.
fn streams(c: &mut Criterion) {
    const CHUNKS: usize = 200;
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(CHUNKS as u64));
    for (name, p) in providers() {
        let frames = stream(name, CHUNKS);
        g.bench_with_input(
            BenchmarkId::new(format!("{name}_to_openai"), CHUNKS),
            &frames,
            |b, frames| b.iter(|| translate_stream(p.as_ref(), black_box(frames))),
        );
    }
    g.finish();
}

criterion_group!(benches, requests, responses, streams);
criterion_main!(benches);
