terraform {
  # 1.7: mock providers in `terraform test`.
  required_version = ">= 1.7"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100.0 is what the offline mirror of this project's CI holds.
      version = ">= 5.60, < 6.0"
    }
  }
}
