"""Files to run several backend instances behind a load balancer, sharing Redis."""
