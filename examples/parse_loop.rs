fn main() {
    let pem = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let start = std::time::Instant::now();
    let n: u32 = std::env::args().nth(2).map(|a| a.parse().unwrap()).unwrap_or(200_000);
    for _ in 0..n {
        std::hint::black_box(cert_authz::Identity::from_pem(std::hint::black_box(&pem)).unwrap());
    }
    println!("{:?}/iter", start.elapsed() / n);
}
