fn main() {
    let pem = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..200_000 {
        std::hint::black_box(cert_authz::Identity::from_pem(std::hint::black_box(&pem)).unwrap());
    }
    println!("{:?}/iter", start.elapsed() / 200_000);
}
