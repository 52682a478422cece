fn main() {
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!("allow GET,POST /svc/{i}/** subject.CN=user{i} subject.O=\"Example Corp\"\n"));
    }
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let p = cert_authz::compile_str(&text, "x").unwrap();
        println!("{:?}", start.elapsed());
        drop(p);
    }
}
