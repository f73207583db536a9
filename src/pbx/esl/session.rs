//! TEMPORARY stub.
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
pub async fn serve<S>(
    _stream: TcpStream,
    _peer: SocketAddr,
    _state: Arc<crate::state::State>,
    _settings: Arc<S>,
) {
}
