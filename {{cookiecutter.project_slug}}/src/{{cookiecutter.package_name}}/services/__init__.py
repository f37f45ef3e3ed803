"""Operations that span several repositories and carry the business rules."""
